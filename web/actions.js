/**
 * What a message's buttons do: reply (a quote above the composer), edit own (also Up arrow
 * in an empty composer; Escape cancels), delete own (after a confirmation), react (the common
 * six plus a small picker), and jumping to a quoted original, loading older history for it.
 */

import { el } from "./dom.js";
import { quoteText } from "./message.js";
import { newClientId } from "./rooms.js";

export const COMMON_EMOJI = ["👍", "❤️", "😂", "🎉", "😮", "😢"];
const MORE_EMOJI = ["🙏", "👀", "🔥", "✅", "❌", "🚀", "💯", "🤔", "👏", "😍", "🙌", "😅", "👋", "💡", "⭐", "🐛"];
/** Older pages loaded at most while looking for a quoted original. */
const MAX_JUMP_PAGES = 20;

const $ = (id) => document.getElementById(id);
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

export class MessageActions {
  constructor(chat) {
    this.chat = chat;
    /** {room, msg} being replied to or edited; the composer shows it in a banner. */
    this.replying = null;
    this.editing = null;
    this.picker = null;
  }

  /** The callbacks message.js wires to each message's buttons. */
  callbacks() {
    return {
      reply: (msg) => this.reply(msg),
      edit: (msg) => this.edit(msg),
      remove: (msg) => this.remove(msg),
      react: (msg, emoji, on) => this.react(msg, emoji, on),
      pick: (msg, anchor) => this.pick(msg, anchor),
      jump: (id) => this.jump(id),
    };
  }

  room() {
    return this.chat.rooms.get(this.chat.active);
  }

  reply(msg) {
    this.editing = null;
    this.replying = { room: this.chat.active, msg };
    this.banner();
    $("message").focus();
  }

  edit(msg) {
    if (!same(msg.user, this.chat.me) || msg.deleted) return;
    this.replying = null;
    this.editing = { room: this.chat.active, msg };
    const input = $("message");
    input.value = msg.text;
    input.dispatchEvent(new Event("input"));
    this.banner();
    input.focus();
  }

  /** Up arrow in an empty composer: edit my newest message in this room. */
  editLast() {
    const room = this.room();
    if (!room) return false;
    const mine = room.sorted().filter((m) => same(m.user, this.chat.me) && !m.deleted);
    if (!mine.length) return false;
    this.edit(mine[mine.length - 1]);
    return true;
  }

  /** Escape: leave edit or reply mode. */
  cancel() {
    if (!this.editing && !this.replying) return false;
    if (this.editing) {
      $("message").value = "";
      $("message").dispatchEvent(new Event("input"));
    }
    this.editing = this.replying = null;
    this.banner();
    return true;
  }

  /** Room switch: a reply or edit belongs to the room it was started in. */
  roomChanged() {
    if (this.editing || this.replying) this.cancel();
    this.closePicker();
  }

  /** The composer's submit in edit mode: true when it sent an edit instead of a message. */
  submitEdit(text) {
    if (!this.editing) return false;
    const { room, msg } = this.editing;
    this.editing = null;
    this.banner();
    if (text !== msg.text) this.chat.socket.change({ type: "edit", room, id: msg.id, text }, newClientId());
    return true;
  }

  /** The id the next send replies to (and forget it). */
  takeReply() {
    const r = this.replying;
    this.replying = null;
    this.banner();
    return r && r.room === this.chat.active ? r.msg.id : null;
  }

  remove(msg) {
    if (!confirm("Delete this message? It is removed for everyone.")) return;
    this.chat.socket.change({ type: "delete", room: this.chat.active, id: msg.id }, newClientId());
  }

  react(msg, emoji, on) {
    this.closePicker();
    this.chat.socket.change({ type: "react", room: this.chat.active, id: msg.id, emoji, on }, newClientId());
  }

  pick(msg, anchor) {
    const open = this.picker && this.picker.dataset.id === msg.id;
    this.closePicker();
    if (open) return;
    const mine = (emoji) => ((msg.reactions || {})[emoji] || []).some((u) => same(u, this.chat.me));
    const button = (emoji) =>
      el(
        "button",
        { type: "button", class: "pick", title: emoji, onclick: () => this.react(msg, emoji, !mine(emoji)) },
        emoji,
      );
    this.picker = el(
      "div",
      { class: "picker", role: "dialog", "aria-label": "Add a reaction", dataset: { id: msg.id } },
      el("div", { class: "picker-row common" }, ...COMMON_EMOJI.map(button)),
      el("div", { class: "picker-row more" }, ...MORE_EMOJI.map(button)),
    );
    this.picker.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        this.closePicker();
        anchor.focus();
      }
    });
    anchor.closest(".body").append(this.picker);
    this.picker.querySelector("button").focus();
  }

  closePicker() {
    if (this.picker) this.picker.remove();
    this.picker = null;
  }

  /** Scroll to a message by id, loading older pages until it is held (or history ends). */
  async jump(id) {
    const room = this.room();
    if (!room) return;
    for (let i = 0; !room.byId.has(id) && room.hasMore && i < MAX_JUMP_PAGES; i += 1) {
      await this.chat.loadOlder();
    }
    const node = this.chat.list.byId(id);
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    node.classList.remove("flash");
    void node.offsetWidth; // restart the highlight animation
    node.classList.add("flash");
  }

  /** The line above the composer: "Replying to bob: …" or "Editing your message". */
  banner() {
    const box = $("composer-context");
    const state = this.editing ? "editing" : this.replying ? "replying" : "";
    box.hidden = !state;
    box.dataset.state = state;
    if (!state) {
      box.replaceChildren();
      return;
    }
    const label = this.editing
      ? "Editing your message · Escape cancels"
      : `Replying to ${quoteText(this.replying.msg)}`;
    box.replaceChildren(
      el("span", { class: "context-text" }, label),
      el("button", { type: "button", class: "icon small", title: "Cancel", "aria-label": "Cancel", onclick: () => this.cancel() }, "✕"),
    );
  }
}

/** Touch screens have no hover: a long press on a message shows its actions. */
export function bindLongPress(list, signal) {
  const LONG_PRESS_MS = 500;
  let timer = null;
  const cancel = () => clearTimeout(timer);
  list.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse") return;
    const li = e.target.closest("li.msg");
    if (!li || !li.querySelector(".actions")) return;
    cancel();
    timer = setTimeout(() => {
      for (const other of list.querySelectorAll("li.show-actions")) if (other !== li) other.classList.remove("show-actions");
      li.classList.toggle("show-actions");
    }, LONG_PRESS_MS);
  }, { signal });
  for (const type of ["pointerup", "pointercancel", "pointermove"]) list.addEventListener(type, cancel, { signal, passive: true });
}
