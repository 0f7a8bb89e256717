/** What the client holds for each room: messages by seq (deduplicated), pending sends, people. */

/** A client_id for one send; getRandomValues works on plain http too (randomUUID does not). */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class Room {
  constructor(info) {
    this.name = info.name;
    /** Messages by seq; a seq is held at most once, whichever way it arrived. */
    this.messages = new Map();
    this.oldestSeq = null;
    this.newestSeq = null;
    /** client_id -> {client_id, room, text, ts, user, failed?} not yet acked. */
    this.pending = new Map();
    this.epoch = null;
    this.loaded = false;
    this.hasMore = true;
    this.members = [];
    this.online = new Set();
    /** user -> time (ms) their typing indicator expires. */
    this.typers = new Map();
    this.update(info);
  }

  /** Refresh the REST room fields (GET /api/rooms). */
  update(info) {
    this.private = Boolean(info.private);
    this.dm = Boolean(info.dm);
    this.member = info.member !== false;
    this.headSeq = Math.max(this.headSeq || 0, info.head_seq || 0);
    this.lastRead = Math.max(this.lastRead || 0, info.last_read || 0);
    this.unread = info.unread || 0;
  }

  /** The highest seq this client has seen; rejoining with it as `since` misses nothing. */
  get since() {
    return Math.max(this.newestSeq || 0, this.loaded ? 0 : this.headSeq);
  }

  /** Add a message; false when this seq is already held (a replay or our own echo). */
  add(msg) {
    if (this.messages.has(msg.seq)) return false;
    this.messages.set(msg.seq, msg);
    if (this.oldestSeq === null || msg.seq < this.oldestSeq) this.oldestSeq = msg.seq;
    if (this.newestSeq === null || msg.seq > this.newestSeq) this.newestSeq = msg.seq;
    if (msg.seq > this.headSeq) this.headSeq = msg.seq;
    if (this.oldestSeq <= 1) this.hasMore = false;
    return true;
  }

  /** A `delete` event: the message it names (if held) becomes a tombstone; null if not held. */
  applyDelete(event) {
    const msg = [...this.messages.values()].find((m) => m.id === event.id);
    if (!msg) return null;
    msg.deleted = true;
    msg.text = "";
    if (event.by) msg.by = event.by;
    delete msg.attachments;
    return msg;
  }

  /** All held messages in seq order. */
  sorted() {
    return Array.from(this.messages.values()).sort((a, b) => a.seq - b.seq);
  }

  /** `reset`: the server's history is not what we hold (new epoch or retention). */
  reset(epoch, headSeq) {
    this.messages.clear();
    this.oldestSeq = this.newestSeq = null;
    this.loaded = false;
    this.hasMore = true;
    this.headSeq = headSeq || 0;
    this.lastRead = Math.min(this.lastRead, this.headSeq);
    this.epoch = epoch || null;
  }

  /** Names typing right now, dropping expired ones. */
  typing(now = Date.now()) {
    for (const [user, until] of this.typers) if (until <= now) this.typers.delete(user);
    return Array.from(this.typers.keys()).sort();
  }

  /** How the room is shown: `#general`, or the other person's name for a DM. */
  label(me) {
    if (this.dm) {
      const other = this.members.find((m) => m.toLowerCase() !== String(me).toLowerCase());
      return other || this.name;
    }
    return this.name;
  }
}
