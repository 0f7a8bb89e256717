/**
 * A private room's owner manages its members from the People panel: each other member's row
 * has a menu button ("Actions for bob") with "Remove from room" and "Make owner", each asked
 * first (confirm.js). The list then shows the server's answer; a refusal shows the server's
 * message under the list. Everyone else (and everyone in public rooms and DMs) sees no menu.
 */

import { api } from "./api.js";
import { confirmAction } from "./confirm.js";
import { el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

export class OwnerMenus {
  /** `render()` draws the open room again (its People list with it). */
  constructor(chat, render, signal) {
    this.chat = chat;
    this.render = render;
    /** "room\nname" of the one menu that is open, kept across re-renders. */
    this.openKey = null;
    // A click anywhere but in the open menu closes it.
    document.addEventListener("click", (e) => {
      if (this.openKey && !e.target.closest(".person-menu, .person-actions")) {
        this.openKey = null;
        this.render();
      }
    }, { signal });
  }

  /** Do I manage the members of `room`? */
  manages(room) {
    return Boolean(room && room.private && !room.dm && room.owner && same(room.owner, this.chat.me));
  }

  /** Room switch: no menu stays open, no error from another room stays shown. */
  roomChanged() {
    this.openKey = null;
    this.error("");
  }

  /** The menu of `name`'s row in `room`, or null when I may not manage them. */
  menuFor(room, name) {
    if (!this.manages(room) || same(name, this.chat.me)) return null;
    const key = `${room.name}\n${name}`;
    const open = this.openKey === key;
    const id = `member-menu-${room.name}-${name}`;
    const toggle = el(
      "button",
      {
        type: "button",
        class: "icon small person-menu",
        "aria-label": `Actions for ${name}`,
        "aria-haspopup": "menu",
        "aria-expanded": String(open),
        "aria-controls": open ? id : null,
        dataset: { key: `menu:${name}` },
        onclick: () => this.toggle(key, name),
      },
      el("span", { "aria-hidden": "true" }, "⋯"),
    );
    if (!open) return toggle;
    const item = (label, action) =>
      el(
        "button",
        { type: "button", role: "menuitem", dataset: { key: `${action}:${name}` }, onclick: () => this.run(room, name, action) },
        label,
      );
    const menu = el(
      "div",
      { id, class: "member-menu", role: "menu", "aria-label": `Actions for ${name}` },
      item("Remove from room", "remove"),
      item("Make owner", "owner"),
    );
    menu.addEventListener("keydown", (e) => this.keys(e, menu, name));
    return el("span", { class: "person-actions" }, toggle, menu);
  }

  toggle(key, name) {
    this.openKey = this.openKey === key ? null : key;
    this.render();
    const first = this.openKey ? `[data-key="${CSS.escape(`remove:${name}`)}"]` : null;
    if (first) $("member-list").querySelector(first)?.focus();
  }

  /** Arrow keys move between the items, Escape closes the menu and goes back to its button. */
  keys(e, menu, name) {
    const items = [...menu.querySelectorAll("[role=menuitem]")];
    const at = items.indexOf(document.activeElement);
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const step = e.key === "ArrowDown" ? 1 : items.length - 1;
      items[(at + step) % items.length].focus();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // the panel's own Escape (close the drawer) is for later
      this.close(name);
    }
  }

  close(name) {
    this.openKey = null;
    this.render();
    $("member-list").querySelector(`[data-key="${CSS.escape(`menu:${name}`)}"]`)?.focus();
  }

  async run(room, name, action) {
    this.close(name);
    const label = `#${room.name}`;
    const ask =
      action === "remove"
        ? { title: `Remove ${name} from ${label}?`, text: `${name} loses the room and its history at once.`, action: "Remove" }
        : { title: `Make ${name} the owner of ${label}?`, text: `${name} will manage its members; you will no longer own it.`, action: "Make owner" };
    if (!(await confirmAction(ask))) return;
    this.error("");
    try {
      if (action === "remove") {
        const { members, owner } = await api.removeMember(room.name, name);
        Object.assign(room, { members, owner });
        this.chat.memberRemoved(room, name); // out of who is online and typing too; drawn
      } else {
        room.owner = (await api.handOver(room.name, name)).owner;
        if (room.name === this.chat.active) this.render();
      }
    } catch (err) {
      this.error(err.message || String(err));
    }
  }

  error(text) {
    const node = $("people-error");
    if (node.textContent !== text) node.textContent = text;
  }
}
