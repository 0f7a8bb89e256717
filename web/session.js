/**
 * Keeping the session alive: renew it before it expires (the server closes the sockets of an
 * expired session with 4001), and when a reconnect is refused, ask whether it is still valid.
 * `onEnded()` is called once the server says the session is gone (401).
 */

import { api } from "./api.js";

/** Renew the session when this much of its remaining lifetime has passed. */
const REFRESH_AT_FRACTION = 0.8;
const REFRESH_RETRY_MS = 60_000;
const MIN_REFRESH_MS = 1_000;
/** setTimeout cannot wait longer than 2^31-1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SessionKeeper {
  constructor(onEnded) {
    this.onEnded = onEnded;
    this.timer = null;
    this.checking = false;
    this.stopped = false;
  }

  /** Fresh from logging in we know when the session ends (`expiresAt`); else renew it now. */
  start(expiresAt) {
    if (expiresAt) this.schedule(expiresAt);
    else this.refresh();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  schedule(expiresAt) {
    clearTimeout(this.timer);
    const wait = Math.max(MIN_REFRESH_MS, (expiresAt - Date.now()) * REFRESH_AT_FRACTION);
    this.timer = setTimeout(() => this.refresh(), Math.min(wait, MAX_TIMER_MS));
  }

  async refresh() {
    if (this.stopped) return;
    try {
      const session = await api.refresh();
      this.schedule(session.expires_at);
    } catch (err) {
      if (err.status === 401) this.onEnded();
      else if (!this.stopped) this.timer = setTimeout(() => this.refresh(), REFRESH_RETRY_MS);
    }
  }

  /** A connection attempt was refused: if the session is gone, stop retrying. */
  async check() {
    if (this.checking) return;
    this.checking = true;
    try {
      await api.me();
    } catch (err) {
      if (err.status === 401) this.onEnded();
    } finally {
      this.checking = false;
    }
  }
}
