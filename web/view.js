/** DOM rendering. User text only ever reaches the page through text nodes (el() children). */

import { attachmentsEl } from "./files.js";
import { deletedText } from "./moderation.js";

/** Build an element; string children become text nodes, never markup. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const srOnly = (text) => el("span", { class: "sr-only" }, text);

const GROUP_WINDOW_MS = 5 * 60_000;
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function timeEl(ts) {
  const d = new Date(ts);
  const today = d.toDateString() === new Date().toDateString();
  return el(
    "time",
    { datetime: d.toISOString(), title: fullFmt.format(d) },
    today ? timeFmt.format(d) : fullFmt.format(d),
  );
}

/** A stable, readable colour per name (white text on it keeps ≥ 4.5:1 contrast). */
function hue(name) {
  let h = 0;
  for (const ch of String(name).toLowerCase()) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function avatar(name, extra = "") {
  const node = el("span", { class: `avatar ${extra}`, "aria-hidden": "true" }, String(name).slice(0, 1).toUpperCase());
  node.style.setProperty("--hue", String(hue(name))); // CSSOM: allowed by the CSP, unlike style=""
  return node;
}

const STATE_TEXT = { pending: "Sending…", delivered: "Delivered", failed: "Not sent" };

function stateEl(state, reason) {
  const text = state === "failed" && reason ? `Not sent: ${reason}` : STATE_TEXT[state];
  if (state === "delivered") return el("span", { class: "state", title: text }, "✓", srOnly(text));
  return el("span", { class: "state", title: text }, text);
}

/** The message list of the open room: ordered by seq, pending sends at the bottom. */
export class MessageList {
  constructor(list, scroller, me) {
    this.list = list;
    this.scroller = scroller;
    this.me = me;
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
    node.dataset.state = "delivered";
    node.querySelector(".state").replaceWith(stateEl("delivered"));
    node.querySelector("time").replaceWith(timeEl(msg.ts));
    node.dataset.ts = String(msg.ts);
    node.remove();
    this.place(node, msg.seq);
  }

  /** A held message changed (deleted): its node is drawn again in place. */
  update(msg) {
    const old = this.bySeq.get(msg.seq);
    if (!old) return;
    const node = this.node(msg, old.dataset.state || null);
    node.dataset.seq = old.dataset.seq;
    node.className = old.className;
    if (msg.deleted) node.classList.add("deleted");
    this.bySeq.set(msg.seq, node);
    old.replaceWith(node);
  }

  fail(clientId, reason) {
    const node = this.byClientId.get(clientId);
    if (!node) return;
    node.dataset.state = "failed";
    node.querySelector(".state").replaceWith(stateEl("failed", reason));
  }

  own(msg) {
    return String(msg.user).toLowerCase() === String(this.me).toLowerCase();
  }

  node(msg, state, reason) {
    const own = this.own(msg);
    const meta = el("div", { class: "meta" }, el("span", { class: "author" }, msg.user), timeEl(msg.ts));
    const bubble = el(
      "div",
      { class: "bubble" },
      own ? srOnly("You said: ") : null,
      msg.deleted ? el("div", { class: "text tombstone" }, deletedText(msg)) : null,
      msg.text ? el("div", { class: "text" }, msg.text) : null,
      attachmentsEl(msg.attachments),
    );
    const foot = own ? el("div", { class: "foot" }, stateEl(state, reason)) : null;
    return el(
      "li",
      {
        class: `${own ? "msg own" : "msg"}${msg.deleted ? " deleted" : ""}`,
        dataset: { user: msg.user, ts: String(msg.ts), ...(state ? { state } : {}) },
      },
      own ? null : avatar(msg.user),
      el("div", { class: "body" }, meta, bubble, foot),
    );
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

/** Rooms or DMs in the sidebar, with unread badges. */
export function renderRoomList(ul, rooms, { active, me, onOpen }) {
  ul.replaceChildren(
    ...rooms.map((room) => {
      const label = room.label(me);
      const unread = room.name === active ? 0 : room.unread;
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
          room.private && !room.dm ? srOnly(" (private)") : null,
          unread ? el("span", { class: "unread" }, unread > 99 ? "99+" : String(unread), srOnly(" unread")) : null,
        ),
      );
    }),
  );
}

/** Who is in the room, online first. */
export function renderPeople(ul, room) {
  const names = [...new Set([...room.members, ...room.online])];
  names.sort((a, b) => Number(room.online.has(b)) - Number(room.online.has(a)) || a.localeCompare(b));
  ul.replaceChildren(
    ...names.map((name) => {
      const on = room.online.has(name);
      return el(
        "li",
        { class: on ? "person online" : "person", dataset: { user: name } },
        avatar(name, "small"),
        el("span", { class: "person-name" }, name),
        el("span", { class: "dot", "aria-hidden": "true" }),
        srOnly(on ? " (online)" : " (offline)"),
      );
    }),
  );
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
