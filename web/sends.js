/**
 * My own sends through their life: pending (shown at once, kept in the outbox across reloads),
 * acked or echoed (delivered, at their seq), or "Not sent" with Retry (the same client_id)
 * and Discard. The socket re-sends whatever is unacked after a reconnect.
 */

import { MAX_TEXT_CHARS } from "./composer.js";
import { loadOutbox, saveOutbox } from "./outbox.js";
import { newClientId } from "./rooms.js";

const $ = (id) => document.getElementById(id);
const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

export class Sends {
  constructor(chat) {
    this.chat = chat;
  }

  /** One of our pending sends came back as a message: it replaces the pending one. */
  settlePending(room, msg) {
    if (!same(msg.user, this.chat.me) || !room.pending.has(msg.client_id)) return false;
    room.pending.delete(msg.client_id);
    this.saveOutbox();
    if (room.name === this.chat.active) this.chat.list.settle(msg.client_id, msg);
    return true;
  }

  onAck(room, ack) {
    const pending = room.pending.get(ack.client_id);
    if (!pending) return;
    room.pending.delete(ack.client_id);
    this.saveOutbox();
    const { id, seq, ts, client_id: clientId } = ack;
    const msg = { room: room.name, id, seq, ts, user: this.chat.me, text: pending.text, client_id: clientId };
    if (pending.reply_to) msg.reply_to = pending.reply_to;
    room.add(msg);
    if (room.name === this.chat.active) this.chat.list.settle(ack.client_id, msg);
  }

  onSendFailed(room, event) {
    if (event.kind && event.kind !== "send") {
      const what = { edit: "edit", delete: "delete", react: "react to" }[event.kind] || "change";
      $("composer-error").textContent = `Could not ${what} the message: ${event.message || event.code}`;
      return;
    }
    const pending = room.pending.get(event.client_id);
    if (!pending) return;
    pending.failed = true;
    pending.reason = event.message || event.code;
    this.saveOutbox();
    if (room.name === this.chat.active) this.chat.list.fail(event.client_id, pending.reason);
  }

  submit() {
    const input = $("message");
    const text = input.value;
    const room = this.chat.rooms.get(this.chat.active);
    if (!room || !text.trim()) return;
    if (text.length > MAX_TEXT_CHARS) {
      $("composer-error").textContent = `Messages can be at most ${MAX_TEXT_CHARS} characters.`;
      return;
    }
    if (this.chat.actions.submitEdit(text)) {
      input.value = "";
      return;
    }
    const replyTo = this.chat.actions.takeReply();
    const pending = { client_id: newClientId(), room: room.name, user: this.chat.me, text, ts: Date.now() };
    if (replyTo) pending.reply_to = replyTo;
    room.pending.set(pending.client_id, pending);
    this.chat.list.addPending(pending);
    this.chat.list.scrollToBottom();
    this.chat.socket.send(room.name, text, pending.client_id, replyTo);
    this.saveOutbox();
    input.value = "";
  }

  /** "Not sent" → Retry: the same client_id again, so a send that did land is not doubled. */
  retrySend(clientId) {
    const room = this.chat.rooms.get(this.chat.active);
    const pending = room && room.pending.get(clientId);
    if (!pending || !pending.failed) return;
    pending.failed = false;
    delete pending.reason;
    this.chat.list.unfail(clientId);
    this.chat.socket.send(room.name, pending.text, clientId, pending.reply_to);
    this.saveOutbox();
  }

  /** "Not sent" → Discard: forget it here (it was never stored). */
  discardSend(clientId) {
    const room = this.chat.rooms.get(this.chat.active);
    if (!room || !room.pending.get(clientId)?.failed) return;
    room.pending.delete(clientId);
    this.chat.list.discard(clientId);
    this.saveOutbox();
  }

  saveOutbox() {
    saveOutbox(this.chat.me, this.chat.rooms.values());
  }

  /** Sends a previous page load made but never saw acked: queue them again, same client_id. */
  restoreOutbox() {
    for (const p of loadOutbox(this.chat.me)) {
      const room = this.chat.rooms.get(p.room);
      if (!room || room.pending.has(p.client_id)) continue;
      room.pending.set(p.client_id, { ...p, user: this.chat.me });
      this.chat.socket.send(p.room, p.text, p.client_id, p.reply_to);
    }
  }
}
