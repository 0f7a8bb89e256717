/**
 * My own sends through their life: pending (shown at once, kept in the outbox across reloads),
 * acked or echoed (delivered, at their seq), or "Not sent" with Retry (the same client_id)
 * and Discard. A send carries its text, the message it replies to and its attachments (the
 * finished uploads of the tray); every (re-)send goes through `send` with all three, so a
 * retry or a restored outbox entry is the same message. The socket re-sends whatever is
 * unacked after a reconnect.
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
    if (pending.attachments && pending.attachments.length) msg.attachments = pending.attachments;
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
    // Blank text goes only with files, and never as an edit (the files stay in the tray then).
    const editing = Boolean(this.chat.actions.editing);
    if (!room || (!text.trim() && (editing || !this.chat.tray.hasReady(room.name)))) return;
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
    // Finished uploads go with this message; ones still uploading stay for the next.
    const attachments = this.chat.tray.take(room.name);
    if (attachments.length) pending.attachments = attachments;
    room.pending.set(pending.client_id, pending);
    this.chat.list.addPending(pending);
    this.chat.list.scrollToBottom();
    this.send(pending);
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
    this.send(pending);
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
      const pending = { ...p, user: this.chat.me };
      room.pending.set(p.client_id, pending);
      this.send(pending);
    }
  }

  /** The one way a pending send reaches the socket: same client_id, reply and files each time. */
  send(pending) {
    const attachments = (pending.attachments || []).map((a) => a.id);
    this.chat.socket.send(pending.room, pending.text, pending.client_id, { replyTo: pending.reply_to, attachments });
  }
}
