/** DOM rendering. User text only ever reaches the page through text nodes (el() children). */

import { avatar, el, srOnly } from "./dom.js";
import { messageNode, stateEl } from "./message.js";

export { avatar, el };

const GROUP_WINDOW_MS = 5 * 60_000;

/** The message list of the open room: ordered by seq, pending sends at the bottom. */
export class MessageList {
  /**
   * `onRetry(clientId)` / `onDiscard(clientId)`: the buttons of a "Not sent" message;
   * `actions`: what a message's own buttons do (message.js); `lookup(id)`: a held message.
   */
  constructor(list, scroller, me, { onRetry, onDiscard, actions, lookup } = {}) {
    this.list = list;
    this.scroller = scroller;
    this.me = me;
    this.onRetry = onRetry;
    this.onDiscard = onDiscard;
    this.actions = actions;
    this.lookup = lookup || (() => undefined);
    this.bySeq = new Map();
    this.byClientId = new Map();
  }

  clear() {
    this.list.replaceChildren();
    this.bySeq.clear();
    this.byClientId.clear();
  }

  /** Render a room from scratch (room switch, reset). */
  renderAll(messages, pending) {
    this.clear();
    for (const msg of messages) this.insert(msg);
    for (const p of pending) this.addPending(p);
  }

  nearBottom() {
    const s = this.scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  scrollToBottom() {
    this.scroller.scrollTop = this.scroller.scrollHeight;
  }

  /** Insert a message at its place by seq (pending sends stay last). */
  insert(msg) {
    if (this.bySeq.has(msg.seq)) return;
    const node = this.node(msg, this.own(msg) ? "delivered" : null);
    this.place(node, msg.seq);
  }

  /** Older history on top, keeping what the reader is looking at still. */
  prepend(messages) {
    const s = this.scroller;
    const before = s.scrollHeight - s.scrollTop;
    for (const msg of messages) this.insert(msg);
    s.scrollTop = s.scrollHeight - before;
  }

  addPending(p) {
    const node = this.node(
      { ...p, seq: null },
      p.failed ? "failed" : "pending",
      p.failed ? p.reason : undefined,
    );
    node.dataset.clientId = p.client_id;
    if (p.failed) node.querySelector(".state").replaceWith(this.failedEl(p.client_id, p.reason));
    this.byClientId.set(p.client_id, node);
    this.list.append(node);
    this.regroup(node);
  }

  /** A pending send is durable: it becomes the message at its seq. */
  settle(clientId, msg) {
    const node = this.byClientId.get(clientId);
    if (!node) {
      this.insert(msg);
      return;
    }
    this.byClientId.delete(clientId);
    if (this.bySeq.has(msg.seq)) {
      node.remove(); // the echo got here first and is already shown
      return;
    }
    // Rebuilt, not patched: a stored message has an id, and so its actions.
    const next = node.nextElementSibling;
    node.remove();
    if (next) this.regroup(next);
    this.place(this.node(msg, "delivered"), msg.seq);
  }

  fail(clientId, reason) {
    const node = this.byClientId.get(clientId);
    if (!node) return;
    node.dataset.state = "failed";
    node.querySelector(".state").replaceWith(this.failedEl(clientId, reason));
  }

  failedEl(clientId, reason) {
    return stateEl("failed", reason, {
      retry: () => this.onRetry && this.onRetry(clientId),
      discard: () => this.onDiscard && this.onDiscard(clientId),
    });
  }

  /** A failed send is being sent again (same client_id): it shows as pending. */
  unfail(clientId) {
    const node = this.byClientId.get(clientId);
    if (!node) return;
    node.dataset.state = "pending";
    node.querySelector(".state").replaceWith(stateEl("pending"));
  }

  /** A failed send the writer gave up on. */
  discard(clientId) {
    const node = this.byClientId.get(clientId);
    if (!node) return;
    this.byClientId.delete(clientId);
    const next = node.nextElementSibling;
    node.remove();
    if (next) this.regroup(next);
  }

  own(msg) {
    return String(msg.user).toLowerCase() === String(this.me).toLowerCase();
  }

  node(msg, state, reason) {
    const own = this.own(msg);
    return messageNode(msg, { own, me: this.me, state, reason, actions: this.actions, lookup: this.lookup });
  }

  /** A held message changed (edit, delete, reaction) or its quoted original arrived. */
  update(msg) {
    const old = this.bySeq.get(msg.seq);
    if (!old) return;
    const node = this.node(msg, old.dataset.state || null);
    node.dataset.seq = old.dataset.seq;
    node.classList.toggle("cont", old.classList.contains("cont"));
    this.bySeq.set(msg.seq, node);
    old.replaceWith(node);
  }

  /** Messages quoting `id` show its current text. */
  refreshQuotes(id, messages) {
    for (const msg of messages) if (msg.reply_to === id) this.update(msg);
  }

  /** The node of a message by id, if shown. */
  byId(id) {
    return this.list.querySelector(`li.msg[data-id="${CSS.escape(id)}"]`);
  }

  place(node, seq) {
    node.dataset.seq = String(seq);
    this.bySeq.set(seq, node);
    let after = null; // the last message node with a smaller seq
    for (let n = this.list.lastElementChild; n; n = n.previousElementSibling) {
      if (n.dataset.seq && Number(n.dataset.seq) < seq && n !== node) {
        after = n;
        break;
      }
    }
    if (after) after.after(node);
    else this.list.prepend(node);
    this.regroup(node);
    if (node.nextElementSibling) this.regroup(node.nextElementSibling);
  }

  /** Consecutive messages by one person within a few minutes share one header. */
  regroup(node) {
    const prev = node.previousElementSibling;
    const cont =
      prev !== null &&
      prev.dataset.user === node.dataset.user &&
      Math.abs(Number(node.dataset.ts) - Number(prev.dataset.ts)) < GROUP_WINDOW_MS;
    node.classList.toggle("cont", cont);
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** A padlock drawn inline (no icon font or emoji font needed). */
function lockIcon() {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "13");
  svg.setAttribute("height", "13");
  svg.setAttribute("class", "lock");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute(
    "d",
    "M4.5 7V5a3.5 3.5 0 0 1 7 0v2h.5A1.5 1.5 0 0 1 13.5 8.5v5A1.5 1.5 0 0 1 12 15H4a1.5 1.5 0 0 1-1.5-1.5v-5A1.5 1.5 0 0 1 4 7zm1.8 0h3.4V5a1.7 1.7 0 0 0-3.4 0z",
  );
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** The other person's state in a DM: a dot, its status text on hover. */
function dmState(room, other, presence) {
  // Status is per person, not per room: the latest one heard in any room we share.
  const seen = presence && presence.of(other);
  const state = seen ? seen.state : room.online.has(other) ? "online" : "offline";
  const text = seen && seen.text ? `${state}: ${seen.text}` : state;
  return el("span", { class: `presence-dot ${state}`, title: text, dataset: { state } }, srOnly(` (${text})`));
}

/** Rooms or DMs in the sidebar, with unread badges. */
export function renderRoomList(ul, rooms, { active, me, onOpen, presence }) {
  ul.replaceChildren(
    ...rooms.map((room) => {
      const label = room.label(me);
      const unread = room.name === active ? 0 : room.unread;
      const mentions = room.name === active ? 0 : room.mentions;
      const icon = room.dm
        ? avatar(label, "small")
        : el("span", { class: "hash", "aria-hidden": "true" }, room.private ? lockIcon() : "#");
      return el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: unread ? "room-link has-unread" : "room-link",
            "aria-current": room.name === active ? "page" : null,
            dataset: { room: room.name },
            onclick: () => onOpen(room.name),
          },
          icon,
          el("span", { class: "room-name" }, label),
          room.dm ? dmState(room, label, presence) : null,
          room.private && !room.dm ? srOnly(" (private)") : null,
          mentions ? el("span", { class: "mentions" }, `@${mentions > 99 ? "99+" : mentions}`, srOnly(" mentions")) : null,
          unread ? el("span", { class: "unread" }, unread > 99 ? "99+" : String(unread), srOnly(" unread")) : null,
        ),
      );
    }),
  );
}

/**
 * Who is in the room, online first, with their state's dot and status text; a private room's
 * owner is marked. `menu(name)` may give a person's row a control (the owner's member
 * actions, owner.js). Rebuilt on every presence change: the focused control (by its
 * `data-key`) is focused again in the new list, so keyboard users keep their place.
 */
export function renderPeople(ul, room, presence, menu = () => null) {
  const focused = ul.contains(document.activeElement) ? document.activeElement.dataset.key : undefined;
  const names = [...new Set([...room.members, ...room.online])];
  names.sort((a, b) => Number(room.online.has(b)) - Number(room.online.has(a)) || a.localeCompare(b));
  ul.replaceChildren(
    ...names.map((name) => {
      const on = room.online.has(name);
      const seen = presence && presence.of(name);
      const state = on ? (seen && seen.state !== "offline" ? seen.state : "online") : "offline";
      const text = seen && seen.text;
      const owner = room.owner && name.toLowerCase() === room.owner.toLowerCase();
      return el(
        "li",
        { class: on ? `person online ${state}` : "person", dataset: { user: name, state } },
        avatar(name, "small"),
        el(
          "span",
          { class: "person-name" },
          name,
          owner ? srOnly(", ") : null,
          owner ? el("span", { class: "person-role" }, "owner") : null,
          text ? el("span", { class: "person-status", title: text }, text) : null,
        ),
        el("span", { class: "dot", "aria-hidden": "true", title: state }),
        srOnly(` (${state})`),
        menu(name),
      );
    }),
  );
  if (focused) ul.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}

/** The connection status pill; counts down while waiting to reconnect. */
export class StatusView {
  constructor(node, onRetry) {
    this.node = node;
    this.timer = null;
    this.text = el("span", { class: "status-text" });
    // Built once: re-rendering it every second would steal keyboard focus.
    this.retry = el("button", { type: "button", class: "link", onclick: onRetry }, "Retry now");
    node.replaceChildren(el("span", { class: "dot", "aria-hidden": "true" }), this.text, this.retry);
  }

  set(status) {
    clearInterval(this.timer);
    this.timer = null;
    this.node.dataset.state = status.state;
    this.retry.hidden = status.state === "connected";
    if (status.state === "reconnecting") {
      const tick = () => {
        const s = Math.max(0, Math.ceil((status.retryAt - Date.now()) / 1000));
        this.text.textContent = s > 0 ? `Reconnecting in ${s}s` : "Reconnecting…";
      };
      tick();
      this.timer = setInterval(tick, 1000);
    } else {
      const text = { connected: "Connected", connecting: "Connecting…", offline: "Offline" };
      this.text.textContent = status.note || text[status.state] || status.state;
    }
  }
}
