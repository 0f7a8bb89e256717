/**
 * Reading a room's history over REST: its newest page when it is first opened (merged with
 * live messages already held) and older pages as the reader scrolls up, one at a time.
 */

import { api } from "./api.js";
import { renderOlder, showRoomNotice } from "./panels.js";

const PAGE_SIZE = 50;

const $ = (id) => document.getElementById(id);

export class HistoryPages {
  constructor(chat) {
    this.chat = chat;
    /** The page being loaded above the oldest held message (a promise), or null. */
    this.loadingOlder = null;
  }

  /** The newest page of a room, merged with whatever live messages are already held. */
  async loadLatest(room) {
    const chat = this.chat;
    let page;
    try {
      page = await api.history(room.name, { limit: PAGE_SIZE });
    } catch (err) {
      showRoomNotice(chat, room, `Could not load messages: ${err.message}`);
      return;
    }
    room.epoch = page.epoch || room.epoch;
    room.loaded = true;
    if (page.messages.length < PAGE_SIZE) room.hasMore = false;
    const active = room.name === chat.active;
    for (const msg of page.messages) {
      if (room.add(msg) && !chat.sends.settlePending(room, msg) && active) chat.list.insert(msg);
    }
    if (!active) return;
    chat.list.scrollToBottom();
    renderOlder(chat, room);
    // Too few to scroll? Fetch older pages until the view is full or history ends.
    const s = $("scroller");
    if (room.hasMore && s.scrollHeight <= s.clientHeight) await this.loadOlder();
  }

  /** The page above the oldest held message; a call while one loads waits for that one. */
  loadOlder() {
    if (this.loadingOlder) return this.loadingOlder;
    this.loadingOlder = this.fetchOlder().finally(() => {
      this.loadingOlder = null;
    });
    return this.loadingOlder;
  }

  async fetchOlder() {
    const chat = this.chat;
    const room = chat.rooms.get(chat.active);
    if (!room || !room.loaded || !room.hasMore || room.oldestSeq === null) return;
    $("load-older").textContent = "Loading…";
    try {
      const page = await api.history(room.name, { before: room.oldestSeq, limit: PAGE_SIZE });
      if (page.messages.length < PAGE_SIZE) room.hasMore = false;
      const fresh = page.messages.filter((msg) => room.add(msg));
      if (room.name === chat.active) {
        chat.list.prepend(fresh);
        for (const msg of fresh) chat.list.refreshQuotes(msg.id, room.sorted());
      }
    } catch {
      /* leave the button up; the reader can try again */
    } finally {
      $("load-older").textContent = "Load older messages";
      renderOlder(chat, room);
    }
  }
}
