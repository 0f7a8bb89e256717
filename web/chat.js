/** The signed-in chat: rooms, the open room, socket events, composer, typing and read markers. */

import { bindLongPress, MessageActions } from "./actions.js";
import { api } from "./api.js";
import { bindComposer } from "./composer.js";
import { bindUploads, UploadTray } from "./files.js";
import { HistoryPages } from "./history.js";
import { bindMentions } from "./mention.js";
import { mentionsMe } from "./message.js";
import { Notifier } from "./notify.js";
import { dropOutbox } from "./outbox.js";
import { OwnerMenus } from "./owner.js";
import { bindPanels, renderRoom, renderRooms, renderTyping, showNotice } from "./panels.js";
import { Presence } from "./presence.js";
import { Room } from "./rooms.js";
import { bindSearch } from "./search.js";
import { Sends } from "./sends.js";
import { SessionKeeper } from "./session.js";
import { signedOutText } from "./moderation.js";
import { ChatSocket } from "./socket.js";
import { MessageList, StatusView } from "./view.js";

/** Show "x is typing…" this long after their last `typing` event. */
const TYPING_SHOW_MS = 5_000;
/** Rooms (new DMs, unread counts) are re-read this often. */
const ROOMS_POLL_MS = 10_000;
const READ_DEBOUNCE_MS = 300;
const DEFAULT_ROOM = "general";
const LAST_ROOM_KEY = "nochat.lastRoom";

const $ = (id) => document.getElementById(id);
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

/** `#team`, or `your conversation with bob` for a DM. */
function roomLabel(room, me) {
  return room.dm ? `your conversation with ${room.label(me)}` : `#${room.name}`;
}

/** What a `left` with a reason tells me: "You were removed from #team", "#team was deleted". */
function goneText(room, reason, me) {
  const label = roomLabel(room, me);
  if (reason === "removed") return `You were removed from ${label}.`;
  if (reason !== "deleted") return `You are no longer in ${label}.`;
  return room.dm ? `Your conversation with ${room.label(me)} was deleted.` : `${label} was deleted.`;
}

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
    /** Rooms the server took me out of, and when: a room-list poll older than that is stale. */
    this.gone = new Map();
    this.lastTypingSent = 0;
    this.timers = [];
    this.abort = new AbortController();
    this.actions = new MessageActions(this);
    this.sends = new Sends(this);
    this.pages = new HistoryPages(this);
    this.owners = new OwnerMenus(this, () => renderRoom(this), this.abort.signal);
    this.session = new SessionKeeper(() => this.signOut("Your session has ended. Please log in again."));
    this.list = new MessageList($("messages"), $("scroller"), this.me, {
      onRetry: (clientId) => this.sends.retrySend(clientId),
      onDiscard: (clientId) => this.sends.discardSend(clientId),
      actions: this.actions.callbacks(),
      lookup: (id) => this.rooms.get(this.active)?.byId.get(id),
    });
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
      onRefused: () => this.session.check(),
    });
  }

  async start() {
    this.panels = bindPanels(this, this.abort.signal);
    bindLongPress($("messages"), this.abort.signal);
    bindSearch(this, this.abort.signal);
    this.presence = new Presence(this, this.abort.signal);
    this.notifier = new Notifier((room, id) => this.openAt(room, id), this.abort.signal);
    bindMentions(this, this.abort.signal); // before the composer: its keys go first
    bindComposer(this, this.abort.signal);
    this.tray = new UploadTray($("uploads"), () => {});
    bindUploads(this, this.tray, this.abort.signal);
    await this.refreshRooms();
    this.sends.restoreOutbox();
    this.socket.start();
    const wanted = decodeURIComponent(location.hash.slice(1)) || localStorage.getItem(LAST_ROOM_KEY);
    const first = [wanted, DEFAULT_ROOM].find((n) => n && this.rooms.has(n)) || this.rooms.keys().next().value;
    if (first) await this.open(first);
    this.timers.push(setInterval(() => this.pollRooms(), ROOMS_POLL_MS));
    this.timers.push(setInterval(() => renderTyping(this), 1000));
    this.session.start(this.expiresAt);
  }

  /** Tear down everything this session made; the page goes back to the login form. */
  stop() {
    this.stopped = true;
    this.socket.stop();
    this.status.set({ state: "offline" });
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.readTimer);
    this.session.stop();
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
    const asked = Date.now();
    const { rooms, next } = await api.rooms();
    for (const info of rooms) {
      if (this.gone.get(info.name) >= asked) continue; // listed before I was taken out
      this.gone.delete(info.name);
      this.addRoom(info);
    }
    // Once more pages were loaded, the cursor is theirs; a poll only refreshes page one.
    if (!this.morePagesLoaded) this.roomsNext = next || null;
    const active = this.rooms.get(this.active);
    if (active) active.unread = active.mentions = 0;
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
      const { members, owner } = await api.members(room.name);
      room.members = members;
      room.owner = owner ?? null;
    } catch {
      return;
    }
    // A DM shows the other person's status: ask for it once it is known who they are.
    const other = room.dm ? room.label(this.me) : null;
    if (other && other !== room.name && !this.presence.of(other)) await this.presence.fetch(other);
    renderRooms(this);
    if (room.name === this.active) renderRoom(this);
  }

  async open(name) {
    const room = this.rooms.get(name);
    if (!room) return;
    if (name !== this.active) {
      this.actions.roomChanged();
      this.owners.roomChanged();
    }
    this.active = name;
    room.unread = room.mentions = 0;
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
    if (!room.loaded) await this.pages.loadLatest(room);
    this.markRead();
  }

  /** Open a room and show one message in it (a search result, a notification). */
  async openAt(name, id) {
    if (name !== this.active) await this.open(name);
    await this.actions.jump(id);
  }

  /** The page above the oldest held message (scrolling up, the button, a jump to a quote). */
  loadOlder() {
    return this.pages.loadOlder();
  }

  // ---- socket events ---------------------------------------------------------------------

  onStatus(status) {
    this.status.set(status);
    if (status.state === "connected" && this.wasDown) this.pollRooms();
    // The server keeps my status, but tells it (else "offline") only once I am present in a
    // room: restore it at the first `joined`, or now when there is no room to join.
    if (status.state === "connected" && !this.presence.restored && !this.socket.rooms.size) this.presence.restore();
    this.wasDown = status.state !== "connected";
  }

  onEvent(event) {
    const room = this.rooms.get(event.room);
    switch (event.type) {
      case "message":
        if (room) this.onMessage(room, event);
        break;
      case "ack":
        if (room) this.sends.onAck(room, event);
        break;
      case "joined":
        if (!room) break;
        room.epoch = event.epoch || room.epoch;
        // The server lists members for private rooms only; keep what REST told us otherwise.
        if (event.members && event.members.length) room.members = event.members;
        room.online = new Set(event.online || []);
        if (!this.presence.restored) this.presence.restore();
        // `joined` names who is online, not their status: ask for the ones not known yet.
        if (room.name === this.active) this.presence.fetchMany([...room.online]).then(() => renderRoom(this));
        renderRooms(this);
        if (room.name === this.active) renderRoom(this);
        break;
      case "presence":
        // state: online / away / busy (all connected) or offline; text: their status text.
        this.presence.saw(event.user, event);
        if (!room) break;
        if (event.state === "offline") room.online.delete(event.user);
        else room.online.add(event.user);
        // A private room lists its members (joined, REST, member_removed): a late offline
        // is no reason to list someone again who was just removed.
        if (!room.members.includes(event.user) && !(room.private && event.state === "offline")) {
          room.members.push(event.user);
        }
        if (room.dm) renderRooms(this);
        if (room.name === this.active) renderRoom(this);
        break;
      case "typing":
        if (!room || same(event.user, this.me)) break;
        room.typers.set(event.user, Date.now() + TYPING_SHOW_MS);
        if (room.name === this.active) renderTyping(this);
        break;
      case "reset":
        if (room) this.onReset(room, event);
        break;
      case "edit":
      case "delete":
      case "reaction":
        if (room) this.onChange(room, event);
        break;
      case "left":
        // Unasked (with a reason): the owner or an admin took me out, or deleted the room.
        if (room && event.reason) this.dropRoom(room, goneText(room, event.reason, this.me));
        break;
      case "member_removed":
        if (room) this.memberRemoved(room, event.user);
        break;
      case "owner_changed":
        if (!room || typeof event.owner !== "string") break;
        room.owner = event.owner;
        if (room.name === this.active) renderRoom(this);
        break;
      case "room":
        // A room I can now see (created, or I was added): the list needs no poll for it.
        if (event.room && typeof event.room === "object" && typeof event.room.name === "string") {
          this.gone.delete(event.room.name);
          this.addRoom(event.room);
          renderRooms(this);
        }
        break;
      case "send_failed":
        if (room) this.sends.onSendFailed(room, event);
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
    if (!this.sends.settlePending(room, msg) && active) {
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
      if (mentionsMe(msg, this.me)) room.mentions += 1;
      renderRooms(this);
    }
    if (!own && mentionsMe(msg, this.me)) this.notifier.mentioned(room, msg);
  }

  /** An edit, delete or reaction: the message it names is shown in its new state. */
  onChange(room, event) {
    const msg = room.applyChange(event);
    if (!msg || room.name !== this.active) return;
    this.list.update(msg);
    if (event.type !== "reaction") this.list.refreshQuotes(msg.id, room.sorted());
  }

  /** Someone else left a private room's member list (its owner or an admin removed them). */
  memberRemoved(room, user) {
    if (same(user, this.me)) return; // `left` says so to me
    room.members = room.members.filter((m) => !same(m, user));
    room.online.delete(user);
    room.typers.delete(user);
    if (room.name === this.active) renderRoom(this);
  }

  /**
   * A room I can no longer see: it leaves the sidebar (the socket has stopped re-joining it),
   * its unsent messages are dropped, the view moves on if it was open, and `notice` says why.
   */
  dropRoom(room, notice) {
    this.rooms.delete(room.name);
    this.gone.set(room.name, Date.now());
    this.sends.saveOutbox();
    showNotice(notice);
    if (room.name === this.active) {
      this.active = null;
      const next = this.rooms.has(DEFAULT_ROOM) ? DEFAULT_ROOM : this.rooms.keys().next().value;
      if (next) {
        this.open(next);
        return;
      }
      this.list.clear();
    }
    renderRooms(this);
  }

  async onReset(room, event) {
    room.reset(event.epoch, event.head_seq);
    if (room.name === this.active) {
      this.list.renderAll([], [...room.pending.values()]);
      await this.pages.loadLatest(room);
    }
    this.socket.join(room.name);
  }

  onError(event) {
    const ref = typeof event.ref === "string" ? event.ref : "";
    if (ref.startsWith("j:") && event.code === "not_found") {
      // Removed or deleted while this page was not connected (or it never was mine).
      const name = ref.slice(2);
      this.socket.forget(name);
      const room = this.rooms.get(name);
      if (room) this.dropRoom(room, `You can no longer see ${roomLabel(room, this.me)}.`);
      return;
    }
    console.warn("nochat: server error", event.code, event.message);
  }

  // ---- composer, typing, reading ---------------------------------------------------------

  submit() {
    this.sends.submit();
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
      if (room.unread || room.mentions) {
        room.unread = room.mentions = 0;
        renderRooms(this);
      }
    }, READ_DEBOUNCE_MS);
  }
}
