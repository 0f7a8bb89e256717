/**
 * The reconnecting WebSocket for protocol nochat.v1.
 *
 * Owns: the connection, reconnect with exponential backoff and full jitter, a
 * watchdog on the server's app-level pings (relaxed while the tab is hidden),
 * re-joining every open room with `since`/`epoch` after a reconnect (but not one the
 * server took us out of: an unasked `left`), and the outbox of unacked sends, which
 * are re-sent with the same `client_id` until acked (the server never stores a retry
 * twice). It does not know about the DOM.
 */

import { BANNED, DISCONNECTED_BY_ADMIN, sendFailureText } from "./moderation.js";

const SUBPROTOCOL = "nochat.v1";
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
/** The server pings every 25 s by default; two missed pings means the link is dead. */
const SERVER_PING_INTERVAL_MS = 25_000;
const WATCHDOG_VISIBLE_MS = 2.5 * SERVER_PING_INTERVAL_MS;
/** Hidden tabs get throttled timers (and sometimes frozen pages): be lenient there. */
const WATCHDOG_HIDDEN_MS = 6 * SERVER_PING_INTERVAL_MS;
const WATCHDOG_TICK_MS = 5_000;
/** A send the server refused for a transient reason is retried after this (or its retry_after). */
const SEND_RETRY_MS = 2_000;
/** Close codes after which reconnecting cannot help until the user signs in again (4003: banned). */
const AUTH_CLOSE_CODES = new Set([1008, 4001, BANNED]);
/** 1000 is a deliberate, normal close: stay closed. Everything else reconnects. */
const NORMAL_CLOSE = 1000;
const TRANSIENT_SEND_ERRORS = new Set(["unavailable", "rate_limited"]);
/**
 * 1012 "service restart": the server is going down to come straight back. The backoff's
 * first step (0–0.5 s) mostly lands while it is still down, and every refusal doubles the
 * next wait (browsers came back after up to 27 s); one retry 0.5–1.5 s later, spread so a
 * room full of clients does not come back at the same instant, usually finds it up.
 */
const SERVICE_RESTART = 1012;
const RESTART_RETRY_MIN_MS = 500;
const RESTART_RETRY_SPREAD_MS = 1_000;

/** `sleep = random(0, min(cap, base * 2^attempt))` (AWS "full jitter"). */
export function backoffDelay(attempt, random = Math.random) {
  return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

/** The first retry after a 1012: 0.5–1.5 s. Later ones use `backoffDelay`. */
export function restartDelay(random = Math.random) {
  return RESTART_RETRY_MIN_MS + Math.floor(random() * RESTART_RETRY_SPREAD_MS);
}

export class ChatSocket {
  /**
   * @param {object} opts
   * @param {string} opts.url ws:// or wss:// URL of /ws
   * @param {(room: string) => {since?: number, epoch?: string}} opts.resume where to resume a room
   * @param {(event: object) => void} opts.onEvent every server event (after socket bookkeeping),
   *   plus the synthetic {type: "send_failed", room, client_id, code, message}
   * @param {(status: {state: string, retryAt?: number}) => void} opts.onStatus
   * @param {(code: number) => void} opts.onAuthLost the server refused our credentials
   * @param {() => void} opts.onRefused a connection attempt failed before opening
   */
  constructor({ url, resume, onEvent, onStatus, onAuthLost, onRefused }) {
    this.url = url;
    this.resume = resume;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.onAuthLost = onAuthLost;
    this.onRefused = onRefused;
    this.ws = null;
    this.rooms = new Set();
    /** client_id -> send frame, in the order they were made. */
    this.outbox = new Map();
    this.attempt = 0;
    this.retrySoon = false;
    this.retryTimer = null;
    this.sendRetryTimers = new Set();
    this.watchdog = null;
    this.lastRx = 0;
    this.stopped = true;
    this.status = { state: "offline" };
    this.onOnline = () => {
      this.attempt = 0; // the network is back: start the backoff afresh, and try now
      this.retryNow();
    };
    this.onOffline = () => {
      if (!this.connected) this.setStatus({ state: "offline" });
    };
    this.onVisible = () => {
      // Coming back to a tab that was waiting a long time: try at once.
      if (!document.hidden && this.status.state === "reconnecting") this.retryNow();
    };
  }

  get connected() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener("online", this.onOnline);
    window.addEventListener("offline", this.onOffline);
    document.addEventListener("visibilitychange", this.onVisible);
    this.connect();
  }

  /** Close for good (log out). Unacked sends are dropped. */
  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    window.removeEventListener("offline", this.onOffline);
    document.removeEventListener("visibilitychange", this.onVisible);
    clearTimeout(this.retryTimer);
    for (const t of this.sendRetryTimers) clearTimeout(t);
    this.sendRetryTimers.clear();
    this.detach(NORMAL_CLOSE, "bye");
    this.outbox.clear();
    this.rooms.clear();
    this.setStatus({ state: "offline" });
  }

  /** Skip the rest of the backoff wait and connect now. */
  retryNow() {
    if (this.stopped || this.connected) return;
    if (this.ws && this.ws.readyState === WebSocket.CONNECTING) {
      this.retrySoon = true; // if this attempt fails, the next one goes at once
      return;
    }
    clearTimeout(this.retryTimer);
    this.connect();
  }

  /** Join (or re-join, e.g. after `reset`) a room; it is re-joined after every reconnect. */
  join(room) {
    this.rooms.add(room);
    if (this.connected) this.sendJoin(room);
  }

  leave(room) {
    if (this.rooms.delete(room) && this.connected) this.raw({ type: "leave", room });
  }

  /** The server will not have us in `room` (a join refused): stop re-joining it. */
  forget(room) {
    this.rooms.delete(room);
  }

  /** Queue a message; it is (re-)sent until acked, always with the same client_id. */
  send(room, text, clientId, { replyTo = null, attachments = [] } = {}) {
    const frame = { type: "send", room, text, client_id: clientId, ref: `s:${clientId}` };
    if (replyTo) frame.reply_to = replyTo;
    if (attachments.length) frame.attachments = attachments;
    this.outbox.set(clientId, frame);
    if (this.connected) this.raw(frame);
  }

  /**
   * Queue a change to a message (`edit`, `delete`, `react`: {type, room, id, …}); like a
   * send it is (re-)sent until acked with one client_id, so the server applies it once.
   */
  change(fields, clientId) {
    const frame = { ...fields, client_id: clientId, ref: `s:${clientId}` };
    this.outbox.set(clientId, frame);
    if (this.connected) this.raw(frame);
  }

  /** My status (`online` / `away` / `busy`, and a text); the server keeps it across reconnects. */
  sendStatus(state, text) {
    if (this.connected) this.raw({ type: "status", state, ...(text ? { text } : {}) });
  }

  typing(room) {
    if (this.connected && this.rooms.has(room)) this.raw({ type: "typing", room });
  }

  read(room, seq) {
    if (this.connected && this.rooms.has(room)) this.raw({ type: "read", room, seq });
  }

  // ---- internals ------------------------------------------------------------------------

  connect() {
    this.setStatus({ state: "connecting" });
    let ws;
    try {
      ws = new WebSocket(this.url, [SUBPROTOCOL]);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.lastRx = Date.now();
      this.startWatchdog();
      this.setStatus({ state: "connected" });
      for (const room of this.rooms) this.sendJoin(room);
      for (const frame of this.outbox.values()) this.raw(frame);
      // The server closes a socket whose first frame is late (4002); any frame will do.
      if (this.rooms.size === 0 && this.outbox.size === 0) this.raw({ type: "pong" });
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopWatchdog();
      if (this.stopped) return;
      if (AUTH_CLOSE_CODES.has(ev.code)) {
        this.setStatus({ state: "offline" });
        this.onAuthLost(ev.code);
      } else if (ev.code === NORMAL_CLOSE) {
        this.setStatus({ state: "offline" });
      } else if (ev.code === DISCONNECTED_BY_ADMIN) {
        // Not automatically: the person may press "Retry now".
        this.setStatus({ state: "offline", note: "Disconnected by an admin" });
      } else {
        if (!opened) this.onRefused();
        this.scheduleReconnect(ev.code === SERVICE_RESTART);
      }
    };
    ws.onerror = () => {}; // onclose follows and decides.
  }

  /** Drop the current socket without waiting for a close handshake a dead peer won't answer. */
  detach(code, reason) {
    const ws = this.ws;
    this.ws = null;
    this.stopWatchdog();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(code, reason);
      } catch {
        /* already closing */
      }
    }
  }

  scheduleReconnect(restarting = false) {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    let delay = backoffDelay(this.attempt);
    if (this.retrySoon) delay = 0;
    else if (restarting) delay = restartDelay();
    this.retrySoon = false;
    this.attempt += 1;
    if (!navigator.onLine) {
      this.setStatus({ state: "offline" });
    } else {
      this.setStatus({ state: "reconnecting", retryAt: Date.now() + delay });
    }
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  startWatchdog() {
    this.stopWatchdog();
    this.watchdog = setInterval(() => {
      const limit = document.hidden ? WATCHDOG_HIDDEN_MS : WATCHDOG_VISIBLE_MS;
      if (Date.now() - this.lastRx > limit) {
        this.detach(4000, "watchdog: no ping from server");
        this.scheduleReconnect();
      }
    }, WATCHDOG_TICK_MS);
  }

  stopWatchdog() {
    clearInterval(this.watchdog);
    this.watchdog = null;
  }

  sendJoin(room) {
    const { since, epoch } = this.resume(room);
    const frame = { type: "join", room, ref: `j:${room}` };
    if (since !== undefined && since !== null) frame.since = since;
    if (epoch) frame.epoch = epoch;
    this.raw(frame);
  }

  raw(frame) {
    try {
      this.ws.send(JSON.stringify(frame));
    } catch {
      /* closing; the outbox and room set survive for the next connection */
    }
  }

  receive(data) {
    this.lastRx = Date.now();
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      return;
    }
    // The server batches: one frame may hold one event or an array of them.
    for (const event of Array.isArray(parsed) ? parsed : [parsed]) {
      if (event && typeof event === "object") this.handle(event);
    }
  }

  handle(event) {
    switch (event.type) {
      case "ping":
        this.raw({ type: "pong" });
        return;
      case "joined":
        this.attempt = 0; // the server is really back: start the backoff afresh next time
        break;
      case "ack":
        this.outbox.delete(event.client_id);
        break;
      case "left":
        // Unasked (a reason): the server took us out (removed, the room deleted). Re-joining
        // it after a reconnect would only be refused.
        if (event.reason) this.rooms.delete(event.room);
        break;
      case "error":
        if (this.sendError(event)) return;
        break;
      default:
        break;
    }
    this.onEvent(event);
  }

  /** Handle an error that answers one of our sends; true when it did. */
  sendError(event) {
    const ref = typeof event.ref === "string" ? event.ref : "";
    if (!ref.startsWith("s:")) return false;
    const clientId = ref.slice(2);
    const frame = this.outbox.get(clientId);
    if (!frame) return true;
    if (TRANSIENT_SEND_ERRORS.has(event.code)) {
      const wait = event.retry_after ? event.retry_after * 1000 : SEND_RETRY_MS;
      const timer = setTimeout(() => {
        this.sendRetryTimers.delete(timer);
        if (this.connected && this.outbox.has(clientId)) this.raw(frame);
      }, wait);
      this.sendRetryTimers.add(timer);
      return true;
    }
    this.outbox.delete(clientId);
    this.onEvent({
      type: "send_failed",
      kind: frame.type,
      room: frame.room,
      client_id: clientId,
      code: event.code,
      message: sendFailureText(event),
    });
    return true;
  }

  setStatus(status) {
    this.status = status;
    this.onStatus(status);
  }
}
