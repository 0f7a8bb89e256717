/**
 * The Rooms section: search, a paged table (private, archived, owner, members), and one
 * room's detail: its members, archive / unarchive, make private, delete (typed confirmation),
 * and its newest messages, each of which a moderator can remove.
 */

import { admin } from "./admin-api.js";
import { ago, badge, busy, button, confirmAction, Notice, SearchPages, table } from "./admin-ui.js";
import { el } from "./dom.js";

const MESSAGES_SHOWN = 50;

const $ = (id) => document.getElementById(id);

function roomBadges(r) {
  return [
    r.dm ? badge("direct") : r.private ? badge("private") : badge("public", "ok"),
    r.archived ? badge("archived", "warn") : null,
  ].filter(Boolean);
}

export class RoomsSection {
  constructor() {
    this.notice = new Notice($("rooms-notice"));
    this.list = $("rooms-table");
    this.detail = $("room-detail");
    this.selected = null;
    this.pages = new SearchPages({
      search: $("rooms-search"),
      list: this.list,
      label: "More rooms",
      key: "rooms",
      fetchPage: (params) => admin.rooms(params),
      notice: this.notice,
      render: () => this.renderTable(),
    });
  }

  load(more = false) {
    return this.pages.load(more);
  }

  get rooms() {
    return this.pages.items;
  }

  renderTable() {
    const now = Date.now();
    this.list.replaceChildren(
      table(
        [
          ["Room", (r) => el("span", { class: "who" }, r.dm ? null : el("span", { class: "hash" }, "#"), r.name)],
          ["", (r) => el("span", { class: "badges" }, ...roomBadges(r))],
          ["Owner", (r) => r.owner || "—"],
          ["Members", (r) => (r.private ? String(r.members ?? 0) : "everyone")],
          ["Created", (r) => ago(r.created, now)],
          ["", (r) => button("Manage", () => this.open(r.name), "ghost small", { "aria-label": `Manage ${r.name}` })],
        ],
        this.rooms,
        {
          caption: "Rooms",
          empty: "No rooms match.",
          rowProps: (r) => ({ dataset: { room: r.name }, "aria-current": r.name === this.selected ? "true" : null }),
        },
      ),
    );
    this.pages.rendered();
  }

  find(name) {
    return this.rooms.find((r) => r.name === name);
  }

  async open(name) {
    this.selected = name;
    this.renderTable();
    const room = this.find(name) || { name };
    // Direct conversations are private between two people: their messages are not shown here.
    const history = room.dm ? null : admin.messages(name, { limit: MESSAGES_SHOWN });
    const [members, page] = await Promise.allSettled([admin.members(name), history]);
    this.renderDetail(
      room,
      members.status === "fulfilled" ? members.value.members : null,
      page.status === "fulfilled" && page.value ? page.value.messages : null,
    );
  }

  async act(btn, action, done) {
    const name = this.selected;
    const ok = await busy(btn, this.notice, () => admin.roomAction(name, action));
    if (!ok) return;
    this.notice.ok(done);
    await this.load();
    await this.open(name);
  }

  renderDetail(room, members, messages) {
    const name = room.name;
    const actions = el("div", { class: "actions-row" });
    const add = (label, action, done, cls) => {
      const b = button(label, () => this.act(b, action, done), cls);
      b.dataset.action = action;
      actions.append(b);
    };
    if (room.archived) add("Unarchive", "unarchive", `#${name} takes messages again.`);
    else add("Archive", "archive", `#${name} is archived: readable, no new messages.`);
    if (!room.private) add("Make private", "private", `#${name} is private now.`);
    const del = button("Delete room", () => this.remove(del, name), "danger small");
    del.dataset.action = "delete";
    actions.append(del);

    this.detail.hidden = false;
    this.detail.replaceChildren(
      el(
        "div",
        { class: "detail-head" },
        el("h3", { id: "room-detail-title" }, `# ${name}`),
        el("span", { class: "badges" }, ...roomBadges(room)),
        button("Close", () => this.close(), "icon close", { "aria-label": "Close" }),
      ),
      actions,
      el("h4", {}, members ? `Members (${members.length})` : "Members"),
      members
        ? el("ul", { class: "chips", "aria-label": `Members of ${name}` }, ...members.map((m) => el("li", { class: "chip" }, m)))
        : el("p", { class: "none" }, "Could not load the members."),
      el("h4", {}, "Newest messages"),
      messages
        ? this.messageList(name, messages)
        : el("p", { class: "none" }, room.dm ? "A direct conversation's messages are not shown." : "Could not load the messages."),
    );
  }

  messageList(room, messages) {
    const shown = messages.filter((m) => !m.deleted).reverse();
    if (!shown.length) return el("p", { class: "none" }, "No messages.");
    return el(
      "ol",
      { class: "mod-messages", "aria-label": `Messages in ${room}` },
      ...shown.map((m) => {
        const b = button("Remove", () => this.removeMessage(b, room, m), "ghost small warn", {
          "aria-label": `Remove message by ${m.user}`,
        });
        return el(
          "li",
          { dataset: { id: m.id } },
          el("span", { class: "mod-meta" }, el("strong", {}, m.user), " ", ago(m.ts)),
          el("span", { class: "mod-text" }, m.text || ""),
          b,
        );
      }),
    );
  }

  async removeMessage(btn, room, msg) {
    const yes = await confirmAction({
      title: "Remove this message?",
      text: `It is removed for everyone in #${room} and shown as removed by a moderator.`,
      action: "Remove",
    });
    if (!yes) return;
    const ok = await busy(btn, this.notice, () => admin.deleteMessage(room, msg.id));
    if (!ok) return;
    this.notice.ok(`Removed ${msg.user}'s message.`);
    await this.open(room);
  }

  async remove(btn, name) {
    const yes = await confirmAction({
      title: `Delete #${name}?`,
      text: "The room and its whole history are deleted for everyone. This cannot be undone.",
      action: "Delete room",
      expect: name,
    });
    if (!yes) return;
    const ok = await busy(btn, this.notice, () => admin.deleteRoom(name));
    if (!ok) return;
    this.notice.ok(`#${name} is deleted.`);
    this.close();
    await this.load();
  }

  close() {
    this.selected = null;
    this.detail.hidden = true;
    this.renderTable();
  }
}
