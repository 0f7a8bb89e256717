/**
 * Unacked sends kept in localStorage (per user), so a message typed just before a reload or
 * a closed tab is still delivered. Resending is safe: the same client_id is never stored twice.
 */

const KEY_PREFIX = "nochat.outbox.";

const key = (me) => KEY_PREFIX + String(me).toLowerCase();

/** Remember every pending (not failed) send of every room. */
export function saveOutbox(me, rooms) {
  const unsent = [];
  for (const room of rooms) {
    for (const p of room.pending.values()) {
      if (!p.failed) {
        const item = { client_id: p.client_id, room: p.room, text: p.text, ts: p.ts };
        if (p.reply_to) item.reply_to = p.reply_to;
        if (p.attachments && p.attachments.length) item.attachments = p.attachments;
        unsent.push(item);
      }
    }
  }
  try {
    if (unsent.length) localStorage.setItem(key(me), JSON.stringify(unsent));
    else localStorage.removeItem(key(me));
  } catch {
    /* storage full or disabled: the in-memory outbox still works */
  }
}

/** What an earlier page load sent but never saw acked: [{client_id, room, text, ts}]. */
export function loadOutbox(me) {
  let unsent;
  try {
    unsent = JSON.parse(localStorage.getItem(key(me)) || "[]");
  } catch {
    return [];
  }
  if (!Array.isArray(unsent)) return [];
  return unsent.filter(
    (p) => p && typeof p.client_id === "string" && typeof p.room === "string" && typeof p.text === "string",
  );
}

export function dropOutbox(me) {
  try {
    localStorage.removeItem(key(me));
  } catch {
    /* nothing to drop */
  }
}
