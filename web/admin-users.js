/**
 * The Users section: search, a paged table (state, last seen, sessions), and one user's
 * detail with their sessions and the moderation actions (disable, enable, ban, unban, mute
 * for a chosen time, unmute, sign out everywhere, a one-time password reset link).
 */

import { admin } from "./admin-api.js";
import { ago, badge, busy, button, confirmAction, Notice, SearchPages, table, userBadges, when } from "./admin-ui.js";
import { avatar, el } from "./dom.js";

/** The mute durations offered, in seconds. */
export const MUTE_CHOICES = [
  ["10 minutes", 600],
  ["1 hour", 3600],
  ["1 day", 86_400],
  ["1 week", 604_800],
];

const $ = (id) => document.getElementById(id);

export class UsersSection {
  constructor() {
    this.notice = new Notice($("users-notice"));
    this.list = $("users-table");
    this.detail = $("user-detail");
    this.selected = null;
    this.pages = new SearchPages({
      search: $("users-search"),
      list: this.list,
      label: "More users",
      key: "users",
      fetchPage: (params) => admin.users(params),
      notice: this.notice,
      render: () => this.renderTable(),
    });
  }

  load(more = false) {
    return this.pages.load(more);
  }

  get users() {
    return this.pages.items;
  }

  renderTable() {
    const now = Date.now();
    this.list.replaceChildren(
      table(
        [
          ["Name", (u) => el("span", { class: "who" }, avatar(u.name, "small"), el("span", {}, u.name))],
          ["State", (u) => badge(u.state || "offline", u.state === "online" ? "ok" : "")],
          ["Last seen", (u) => (u.state === "online" ? "now" : ago(u.last_seen, now))],
          ["Sessions", (u) => String(u.sessions ?? 0)],
          ["Joined", (u) => ago(u.created, now)],
          ["", (u) => el("span", { class: "badges" }, ...userBadges(u, now))],
          ["", (u) => button("Manage", () => this.open(u.name), "ghost small", { "aria-label": `Manage ${u.name}` })],
        ],
        this.users,
        {
          caption: "Users",
          empty: "No users match.",
          rowProps: (u) => ({ dataset: { user: u.name }, "aria-current": u.name === this.selected ? "true" : null }),
        },
      ),
    );
    this.pages.rendered();
  }

  /** Show one user; `keepNotice` after an action, whose outcome the notice shows. */
  async open(name, keepNotice = false) {
    this.selected = name;
    if (!keepNotice) this.notice.clear();
    let user;
    try {
      user = await admin.user(name);
    } catch (err) {
      this.notice.error(err);
      return;
    }
    this.renderDetail(user);
    this.renderTable();
  }

  /** An action answered the new user object: show it in the detail and in the table. */
  update(user) {
    const i = this.users.findIndex((u) => u.name === user.name);
    if (i >= 0) this.users[i] = { ...this.users[i], ...user };
    this.renderTable();
  }

  async act(btn, work, done) {
    let user;
    const ok = await busy(btn, this.notice, async () => {
      user = await work();
    });
    if (!ok) return;
    this.notice.ok(done);
    if (user && user.name) this.update(user);
    await this.open(this.selected, true);
  }

  renderDetail(user) {
    const name = user.name;
    const now = Date.now();
    const actions = el("div", { class: "actions-row" });
    const add = (label, action, done, cls) => {
      const b = button(label, () => this.act(b, () => admin.userAction(name, action), done), cls);
      b.dataset.action = action;
      actions.append(b);
    };
    if (user.disabled) add("Re-enable", "enable", `${name} can sign in again.`);
    else add("Disable", "disable", `${name} is disabled and signed out.`, "ghost small warn");
    if (user.banned) add("Unban", "unban", `${name} is no longer banned.`);
    else {
      const b = button("Ban", async () => {
        const yes = await confirmAction({
          title: `Ban ${name}?`,
          text: `${name}'s sockets close at once and they cannot sign in until unbanned.`,
          action: "Ban",
        });
        if (yes) await this.act(b, () => admin.userAction(name, "ban"), `${name} is banned.`);
      }, "danger small");
      b.dataset.action = "ban";
      actions.append(b);
    }
    add("Sign out everywhere", "signout", `Every session of ${name} has ended.`);

    const muted = user.muted_until && user.muted_until > now;
    const choice = el(
      "select",
      { id: "mute-for", "aria-label": "Mute for" },
      ...MUTE_CHOICES.map(([label, s]) => el("option", { value: String(s) }, label)),
    );
    const mute = button(muted ? "Mute again" : "Mute", () =>
      this.act(mute, () => admin.mute(name, Number(choice.value)), `${name} is muted.`));
    mute.dataset.action = "mute";
    const muteRow = el("div", { class: "actions-row" }, el("label", { for: "mute-for" }, "Mute for"), choice, mute);
    if (muted) {
      const unmute = button("Unmute", () => this.act(unmute, () => admin.userAction(name, "unmute"), `${name} may send again.`));
      unmute.dataset.action = "unmute";
      muteRow.append(unmute);
    }

    const linkBox = el("div", { class: "reset-link", hidden: true });
    const reset = button("Reset password", () => this.reset(reset, name, linkBox));
    reset.dataset.action = "reset-password";

    const sessions = user.sessions_list || [];
    this.detail.hidden = false;
    this.detail.replaceChildren(
      el(
        "div",
        { class: "detail-head" },
        avatar(name),
        el("h3", { id: "user-detail-title" }, name),
        el("span", { class: "badges" }, ...userBadges(user, now)),
        button("Close", () => this.close(), "icon close", { "aria-label": "Close" }),
      ),
      el(
        "p",
        { class: "muted-line" },
        user.state === "online" ? "Online now" : el("span", {}, "Last seen ", ago(user.last_seen, now)),
        muted ? el("span", {}, " · muted until ", when(user.muted_until)) : null,
      ),
      actions,
      muteRow,
      el("div", { class: "actions-row" }, reset),
      linkBox,
      el("h4", {}, `Sessions (${sessions.length})`),
      table(
        [
          ["Session", (s) => el("code", {}, s.id)],
          ["Signed in", (s) => ago(s.created, now)],
          ["Last used", (s) => ago(s.last_used, now)],
          ["Address", (s) => s.address || "—"],
        ],
        sessions,
        { caption: `Sessions of ${name}`, empty: "No open sessions." },
      ),
    );
  }

  async reset(btn, name, box) {
    let answer;
    const ok = await busy(btn, this.notice, async () => {
      answer = await admin.resetPassword(name);
    });
    if (!ok) return;
    const url = new URL(answer.link, location.origin).href;
    const field = el("input", { id: "reset-url", readonly: true, value: url, "aria-label": "One-time reset link" });
    const copy = button("Copy", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(url);
        copy.textContent = "Copied";
      } catch {
        document.execCommand("copy"); // plain http: the async clipboard may be refused
        copy.textContent = "Copied";
      }
    });
    box.hidden = false;
    box.replaceChildren(
      el("p", {}, `Give ${name} this one-time link. It works once and expires `, when(answer.expires), "."),
      el("div", { class: "actions-row" }, field, copy),
    );
    field.select();
  }

  close() {
    this.selected = null;
    this.detail.hidden = true;
    this.renderTable();
  }
}
