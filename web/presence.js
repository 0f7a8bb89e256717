/**
 * My status (online / away / busy and a status text) and everyone else's as the server tells
 * it. The menu in the sidebar sets it; while I chose "online" the client goes away by itself
 * after 5 idle minutes or when the tab is hidden, and back on activity. The idle time can be
 * shortened for tests with `window.NOCHAT_IDLE_MS` (set before the page's scripts run).
 */

import { api } from "./api.js";

export const STATES = ["online", "away", "busy"];
const IDLE_MS = 5 * 60_000;
const MAX_STATUS_TEXT = 100;
/** Statuses asked for when a room is joined (the rest come with their next presence). */
const MAX_FETCH = 20;
const ACTIVITY = ["pointerdown", "keydown", "wheel", "touchstart"];
/** Set while the away the server holds was the client's own doing, not my choice. */
const AUTO_KEY = "nochat.autoAway";

const $ = (id) => document.getElementById(id);
const key = (name) => String(name).toLowerCase();

export class Presence {
  constructor(chat, signal) {
    this.chat = chat;
    /** user (lower case) -> {state, text, last_seen} from presence events and /api/users. */
    this.others = new Map();
    /** What I chose; `auto` is true while the client has put me away by itself. */
    this.mine = { state: "online", text: "" };
    this.auto = false;
    /** False until the server told me my status (restore): until then my dot says offline. */
    this.known = false;
    this.idleMs = Number(window.NOCHAT_IDLE_MS) > 0 ? Number(window.NOCHAT_IDLE_MS) : IDLE_MS;
    this.idleTimer = null;
    this.bindMenu(signal);
    const active = () => this.activity();
    for (const type of ACTIVITY) document.addEventListener(type, active, { capture: true, passive: true, signal });
    // A page being unloaded turns hidden too: that is no reason to go away.
    window.addEventListener("pagehide", () => (this.unloading = true), { signal });
    document.addEventListener("visibilitychange", () => {
      if (this.unloading) return;
      if (document.hidden) this.goAway();
      else this.activity();
    }, { signal });
    signal.addEventListener("abort", () => clearTimeout(this.idleTimer));
    this.armIdle();
    this.renderMine();
  }

  /** The server's view of someone: a `presence` event or GET /api/users/{name}. */
  saw(user, { state, text, last_seen: lastSeen }) {
    this.others.set(key(user), { state, text: text || "", last_seen: lastSeen });
  }

  of(user) {
    return this.others.get(key(user));
  }

  async fetch(user) {
    try {
      this.saw(user, await api.user(user));
    } catch {
      return false; // unknown user, or a server without statuses: the dot stays as joined says
    }
    return true;
  }

  /** After a reload: the status the server kept for me (it persists across reconnects). */
  async restore() {
    this.restored = true;
    const saved = (await this.fetch(this.chat.me)) ? this.of(this.chat.me) : null;
    this.known = true;
    if (saved && STATES.includes(saved.state) && !this.auto) {
      if (saved.state === "away" && localStorage.getItem(AUTO_KEY)) {
        // Away because an earlier page was idle or hidden: I am back now.
        this.mine = { state: "online", text: saved.text };
        this.auto = true;
        this.activity();
      } else {
        this.mine = { state: saved.state, text: saved.text };
        this.setAuto(false); // an automatic away the server never got is no longer mine
      }
    }
    this.renderMine();
  }

  /** Statuses of people not seen yet (at most a few requests per room opened). */
  async fetchMany(names) {
    const me = key(this.chat.me);
    const unknown = names.filter((n) => key(n) !== me && !this.others.has(key(n))).slice(0, MAX_FETCH);
    await Promise.all(unknown.map((n) => this.fetch(n)));
  }

  /** Tell the server (and my own dot). */
  set(state, text) {
    this.known = true;
    this.mine = { state, text: String(text || "").slice(0, MAX_STATUS_TEXT) };
    this.setAuto(false);
    this.chat.socket.sendStatus(this.mine.state, this.mine.text);
    this.renderMine();
    this.armIdle();
  }

  goAway() {
    if (this.mine.state !== "online" || this.auto) return;
    this.setAuto(true);
    this.chat.socket.sendStatus("away", this.mine.text);
    this.renderMine();
  }

  activity() {
    if (document.hidden) return;
    if (this.auto) {
      this.setAuto(false);
      this.chat.socket.sendStatus("online", this.mine.text);
      this.renderMine();
    }
    this.armIdle();
  }

  setAuto(auto) {
    this.auto = auto;
    try {
      if (auto) localStorage.setItem(AUTO_KEY, "1");
      else localStorage.removeItem(AUTO_KEY);
    } catch {
      /* storage disabled: a reload then keeps an automatic away until I change it */
    }
  }

  armIdle() {
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.goAway(), this.idleMs);
  }

  /** The state others see me in right now (offline until the server has told me mine). */
  shown() {
    if (!this.known) return "offline";
    return this.auto ? "away" : this.mine.state;
  }

  renderMine() {
    const button = $("my-status");
    const state = this.shown();
    button.dataset.state = state;
    $("my-status-text").textContent = this.mine.text || state[0].toUpperCase() + state.slice(1);
    button.title = `Status: ${state}${this.auto ? " (idle)" : ""}`;
  }

  bindMenu(signal) {
    const dialog = $("status-dialog");
    const form = dialog.querySelector("form");
    $("my-status").addEventListener("click", () => {
      form.querySelector(`input[value=${this.mine.state}]`).checked = true;
      $("status-text").value = this.mine.text;
      dialog.showModal();
    }, { signal });
    form.querySelector("button[value=cancel]").addEventListener("click", () => dialog.close(), { signal });
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const state = form.querySelector("input[name=state]:checked")?.value || "online";
      this.set(state, $("status-text").value.trim());
      dialog.close();
    }, { signal });
  }
}
