/** The signed-in chat: rooms, the open room, socket events, composer, typing and read markers. */

import { api } from "./api.js";
import { bindComposer } from "./composer.js";
import { bindUploads, UploadTray } from "./files.js";
import { dropOutbox, loadOutbox, saveOutbox } from "./outbox.js";
import { bindPanels, renderOlder, renderRoom, renderRooms, renderTyping, showRoomNotice } from "./panels.js";
import { newClientId, Room } from "./rooms.js";
import { signedOutText } from "./moderation.js";
import { ChatSocket } from "./socket.js";
import { MessageList, StatusView } from "./view.js";

const PAGE_SIZE = 50;
const MAX_TEXT_CHARS = 4000;
/** Show "x is typing…" this long after their last `typing` event. */
const TYPING_SHOW_MS = 5_000;
/** Rooms (new DMs, unread counts) are re-read this often. */
const ROOMS_POLL_MS = 10_000;
const READ_DEBOUNCE_MS = 300;
/** Renew the session when this much of its remaining lifetime has passed. */
const REFRESH_AT_FRACTION = 0.8;
const REFRESH_RETRY_MS = 60_000;
const MIN_REFRESH_MS = 1_000;
/** setTimeout cannot wait longer than 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const DEFAULT_ROOM = "general";
const LAST_ROOM_KEY = "nochat.lastRoom";

const $ = (id) => document.getElementById(id);
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

export class Chat {
  constructor(me, { onSignedOut, expiresAt }) {
    this.me = me.name;
    this.expiresAt = expiresAt;
    this.onSignedOut = onSignedOut;
    this.rooms = new Map();
    /** Cursor of the next page of public rooms (GET /api/rooms `next`); null: none left. */
    this.roomsNext = null;
    this.morePagesLoaded = false;
    this.loadingRooms = false;
    this.active = null;
    this.lastTypingSent = 0;
    this.loadingOlder = false;
    this.timers = [];
    this.abort = new AbortController();
    this.list = new MessageList($("messages"), $("scroller"), this.me);
    this.status = new StatusView($("status"), () => this.socket.retryNow());
    this.socket = new ChatSocket({
      url: wsUrl(),
      resume: (name) => {
        const room = this.rooms.get(name);
        return room ? { since: room.since, epoch: room.epoch } : {};
      },
      onEvent: (event) => this.onEvent(event),
      onStatus: (status) => this.onStatus(status),
      onAuthLost: (code) => this.signOut(signedOutText(code)),
      onRefused: () => this.checkSession(),
    });
  }

  async start() {
    this.panels = bindPanels(this, this.abort.signal);
    bindComposer(this, this.abort.signal);
    this.tray = new UploadTray($("uploads"), () => {});
    bindUploads(this, this.tray, this.abort.signal);
    await this.refreshRooms();
    this.restoreOutbox();
    this.socket.start();
    const wanted = decodeURIComponent(location.hash.slice(1)) || localStorage.getItem(LAST_ROOM_KEY);
    const first = [wanted, DEFAULT_ROOM].find((n) => n && this.rooms.has(n)) || this.rooms.keys().next().value;
    if (first) await this.open(first);
    this.timers.push(setInterval(() => this.pollRooms(), ROOMS_POLL_MS));
    this.timers.push(setInterval(() => renderTyping(this), 1000));
    // Fresh from logging in we know when the session ends; after a reload, renew it now.
    if (this.expiresAt) this.scheduleRefresh(this.expiresAt);
    else this.refreshSession();
  }

  /** Keep a long-lived tab signed in: the server closes sockets of an expired session (4001). */
  scheduleRefresh(expiresAt) {
    clearTimeout(this.refreshTimer);
    const wait = Math.max(MIN_REFRESH_MS, (expiresAt - Date.now()) * REFRESH_AT_FRACTION);
    this.refreshTimer = setTimeout(() => this.refreshSession(), Math.min(wait, MAX_TIMER_MS));
  }

  async refreshSession() {
    if (this.stopped) return;
    try {
      const session = await api.refresh();
      this.scheduleRefresh(session.expires_at);
    } catch (err) {
      if (err.status === 401) this.signOut("Your session has ended. Please log in again.");
      else if (!this.stopped) this.refreshTimer = setTimeout(() => this.refreshSession(), REFRESH_RETRY_MS);
    }
  }

  /** Tear down everything this session made; the page goes back to the login form. */
  stop() {
    this.stopped = true;
    this.socket.stop();
    this.status.set({ state: "offline" });
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.readTimer);
    clearTimeout(this.refreshTimer);
    this.abort.abort();
    this.list.clear();
  }

  signOut(reason) {
    if (this.stopped) return; // a poll and a refused reconnect can both notice
    this.stop();
    this.onSignedOut(reason);
  }

  async logout() {
    dropOutbox(this.me);
    try {
      await api.logout();
    } catch {
      /* the cookie may already be gone; signing out locally is what matters */
    }
    this.signOut("");
  }

  /** A connection attempt was refused: if the session is gone, stop retrying. */
  async checkSession() {
    if (this.checking) return;
    this.checking = true;
    try {
      await api.me();
    } catch (err) {
      if (err.status === 401) this.signOut("Your session has ended. Please log in again.");
    } finally {
      this.checking = false;
    }
  }

  // ---- rooms -----------------------------------------------------------------------------

  addRoom(info) {
    let room = this.rooms.get(info.name);
    if (room) {
      room.update(info);
      return room;
    }
    room = new Room(info);
    this.rooms.set(room.name, room);
    if (room.member) this.socket.join(room.name);
    if (room.dm) this.loadMembers(room);
    return room;
  }

  /** The first page of the room list: every room I am in, and the first public rooms. */
  async refreshRooms() {
    const { rooms, next } = await api.rooms();
    for (const info of rooms) this.addRoom(info);
    // Once more pages were loaded, the cursor is theirs; a poll only refreshes page one.
    if (!this.morePagesLoaded) this.roomsNext = next || null;
    const active = this.rooms.get(this.active);
    if (active) active.unread = 0;
    renderRooms(this);
  }

  /** The next page of public rooms I have not joined (the sidebar's "More public rooms"). */
  async loadMoreRooms() {
    if (!this.roomsNext || this.loadingRooms) return;
    this.loadingRooms = true;
    try {
      const { rooms, next } = await api.rooms({ after: this.roomsNext });
      for (const info of rooms) this.addRoom(info);
      this.morePagesLoaded = true;
      this.roomsNext = next || null;
    } catch (err) {
      console.warn("nochat: could not load more rooms", err.code);
    } finally {
      this.loadingRooms = false;
    }
    renderRooms(this);
  }

  /** The periodic refresh: also notices a session that ended elsewhere (logout in another tab). */
  async pollRooms() {
    try {
      await this.refreshRooms();
    } catch (err) {
      if (err.status === 401) this.signOut("Your session has ended. Please log in again.");
    }
  }

  async loadMembers(room) {
    try {
      room.members = (await api.members(room.name)).members;
    } catch {
      return;
    }
    renderRooms(this);
    if (room.name === this.active) renderRoom(this);
  }

  async open(name) {
    const room = this.rooms.get(name);
    if (!room) return;
    this.active = name;
    room.unread = 0;
    history.replaceState(null, "", `#${encodeURIComponent(name)}`);
    localStorage.setItem(LAST_ROOM_KEY, name);
    this.panels.closeSidebar();
    $("jump").hidden = true;
    this.list.renderAll(room.sorted(), [...room.pending.values()]);
    this.list.scrollToBottom();
    renderRoom(this);
    renderRooms(this);
    if (!this.socket.rooms.has(name)) this.socket.join(name);
    if (!room.dm) this.loadMembers(room); // DMs load theirs when they are found
    // On phones focusing the composer would pop up the keyboard over the conversation.
    if (!window.matchMedia("(max-width: 760px)").matches) $("message").focus();
    if (!room.loaded) await this.loadLatest(room);
    this.markRead();
  }

  /** The newest page of a room, merged with whatever live messages are already held. */
  async loadLatest(room) {
    let page;
    try {
      page = await api.history(room.name, { limit: PAGE_SIZE });
    } catch (err) {
      showRoomNotice(this, room, `Could not load messages: ${err.message}`);
      return;
    }
    room.epoch = page.epoch || room.epoch;
    room.loaded = true;
    if (page.messages.length < PAGE_SIZE) room.hasMore = false;
    const active = room.name === this.active;
    for (const msg of page.messages) {
      if (room.add(msg) && !this.settlePending(room, msg) && active) this.list.insert(msg);
    }
    if (!active) return;
    this.list.scrollToBottom();
    renderOlder(this, room);
    // Too few to scroll? Fetch older pages until the view is full or history ends.
    const s = $("scroller");
    if (room.hasMore && s.scrollHeight <= s.clientHeight) await this.loadOlder();
  }

  async loadOlder() {
    const room = this.rooms.get(this.active);
    if (!room || !room.loaded || !room.hasMore || this.loadingOlder || room.oldestSeq === null) return;
    this.loadingOlder = true;
    $("load-older").textContent = "Loading…";
    try {
      const page = await api.history(room.name, { before: room.oldestSeq, limit: PAGE_SIZE });
      if (page.messages.length < PAGE_SIZE) room.hasMore = false;
      const fresh = page.messages.filter((msg) => room.add(msg));
      if (room.name === this.active) this.list.prepend(fresh);
    } catch {
      /* leave the button up; the reader can try again */
    } finally {
      this.loadingOlder = false;
      $("load-older").textContent = "Load older messages";
      renderOlder(this, room);
    }
  }

  // ---- socket events ---------------------------------------------------------------------

  onStatus(status) {
    this.status.set(status);
    if (status.state === "connected" && this.wasDown) this.pollRooms();
    this.wasDown = status.state !== "connected";
  }

  onEvent(event) {
    const room = this.rooms.get(event.room);
    switch (event.type) {
      case "message":
        if (room) this.onMessage(room, event);
        break;
      case "ack":
        if (room) this.onAck(room, event);
        break;
      case "joined":
        if (!room) break;
        room.epoch = event.epoch || room.epoch;
        // The server lists members for private rooms only; keep what REST told us otherwise.
        if (event.members && event.members.length) room.members = event.members;
        room.online = new Set(event.online || []);
        renderRooms(this);
        if (room.name === this.active) renderRoom(this);
        break;
      case "presence":
        if (!room) break;
        if (event.state === "online") room.online.add(event.user);
        else room.online.delete(event.user);
        if (!room.members.includes(event.user)) room.members.push(event.user);
        if (room.name === this.active) renderRoom(this);
        break;
      case "typing":
        if (!room || same(event.user, this.me)) break;
        room.typers.set(event.user, Date.now() + TYPING_SHOW_MS);
        if (room.name === this.active) renderTyping(this);
        break;
      case "delete": {
        const msg = room && room.applyDelete(event);
        if (msg && room.name === this.active) this.list.update(msg);
        break;
      }
      case "reset":
        if (room) this.onReset(room, event);
        break;
      case "send_failed":
        if (room) this.onSendFailed(room, event);
        break;
      case "error":
        this.onError(event);
        break;
      default:
        break;
    }
  }

  onMessage(room, event) {
    const msg = { ...event };
    delete msg.type;
    if (!room.add(msg)) return; // already held: a replay or the echo of an ack
    room.typers.delete(msg.user);
    const own = same(msg.user, this.me);
    const active = room.name === this.active;
    // Our own send echoed before its ack is durable: settlePending marks it delivered.
    if (!this.settlePending(room, msg) && active) {
      const stick = own || this.list.nearBottom();
      this.list.insert(msg);
      if (stick) this.list.scrollToBottom();
      else $("jump").hidden = false;
    }
    if (active) {
      renderTyping(this);
      this.markRead();
    }
    if (!own && msg.seq > room.lastRead && !(active && this.reading())) {
      room.unread += 1;
      renderRooms(this);
    }
  }

  /** One of our pending sends came back as a message: it replaces the pending one. */
  settlePending(room, msg) {
    if (!same(msg.user, this.me) || !room.pending.has(msg.client_id)) return false;
    room.pending.delete(msg.client_id);
    this.saveOutbox();
    if (room.name === this.active) this.list.settle(msg.client_id, msg);
    return true;
  }

  onAck(room, ack) {
    const pending = room.pending.get(ack.client_id);
    if (!pending) return;
    room.pending.delete(ack.client_id);
    this.saveOutbox();
    const { id, seq, ts, client_id: clientId } = ack;
    const msg = { room: room.name, id, seq, ts, user: this.me, text: pending.text, client_id: clientId };
    if (pending.attachments && pending.attachments.length) msg.attachments = pending.attachments;
    room.add(msg);
    if (room.name === this.active) this.list.settle(ack.client_id, msg);
  }

  async onReset(room, event) {
    room.reset(event.epoch, event.head_seq);
    if (room.name === this.active) {
      this.list.renderAll([], [...room.pending.values()]);
      await this.loadLatest(room);
    }
    this.socket.join(room.name);
  }

  onSendFailed(room, event) {
    const pending = room.pending.get(event.client_id);
    if (!pending) return;
    pending.failed = true;
    pending.reason = event.message || event.code;
    this.saveOutbox();
    if (room.name === this.active) this.list.fail(event.client_id, pending.reason);
  }

  onError(event) {
    const ref = typeof event.ref === "string" ? event.ref : "";
    if (ref.startsWith("j:") && event.code === "not_found") {
      const name = ref.slice(2);
      this.socket.leave(name);
      const room = this.rooms.get(name);
      if (room && name === this.active) showRoomNotice(this, room, "You cannot see this room.");
      return;
    }
    console.warn("nochat: server error", event.code, event.message);
  }

  // ---- composer, typing, reading ---------------------------------------------------------

  submit() {
    const input = $("message");
    const text = input.value;
    const room = this.rooms.get(this.active);
    if (!room || (!text.trim() && !this.tray.hasReady(room.name))) return;
    if (text.length > MAX_TEXT_CHARS) {
      $("composer-error").textContent = `Messages can be at most ${MAX_TEXT_CHARS} characters.`;
      return;
    }
    // Finished uploads go with this message; ones still uploading stay for the next.
    const attachments = this.tray.take(room.name);
    const pending = { client_id: newClientId(), room: room.name, user: this.me, text, ts: Date.now(), attachments };
    room.pending.set(pending.client_id, pending);
    this.list.addPending(pending);
    this.list.scrollToBottom();
    this.socket.send(room.name, text, pending.client_id, attachments.map((a) => a.id));
    this.saveOutbox();
    input.value = "";
  }

  saveOutbox() {
    saveOutbox(this.me, this.rooms.values());
  }

  /** Sends a previous page load made but never saw acked: queue them again, same client_id. */
  restoreOutbox() {
    for (const p of loadOutbox(this.me)) {
      const room = this.rooms.get(p.room);
      if (!room || room.pending.has(p.client_id)) continue;
      room.pending.set(p.client_id, { ...p, user: this.me });
      this.socket.send(p.room, p.text, p.client_id, (p.attachments || []).map((a) => a.id));
    }
  }

  /** Is the reader looking at the bottom of the open room right now? */
  reading() {
    return !document.hidden && this.list.nearBottom();
  }

  markRead() {
    clearTimeout(this.readTimer);
    this.readTimer = setTimeout(() => {
      const room = this.rooms.get(this.active);
      if (!room || !this.reading() || !this.socket.connected) return;
      if (room.newestSeq !== null && room.newestSeq > room.lastRead) {
        room.lastRead = room.newestSeq;
        this.socket.read(room.name, room.newestSeq);
      }
      if (room.unread) {
        room.unread = 0;
        renderRooms(this);
      }
    }, READ_DEBOUNCE_MS);
  }
}
