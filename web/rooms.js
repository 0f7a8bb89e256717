/** What the client holds for each room: messages by seq (deduplicated), pending sends, people. */

/** A client_id for one send; getRandomValues works on plain http too (randomUUID does not). */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

export class Room {
  constructor(info) {
    this.name = info.name;
    /** Messages by seq; a seq is held at most once, whichever way it arrived. */
    this.messages = new Map();
    /** The same messages by id (edits, deletes, reactions and replies name a message by id). */
    this.byId = new Map();
    /** Seqs of changes (edit, delete, reaction) already applied: a replay applies none twice. */
    this.changes = new Set();
    this.oldestSeq = null;
    this.newestSeq = null;
    /** client_id -> {client_id, room, text, ts, user, failed?} not yet acked. */
    this.pending = new Map();
    this.epoch = null;
    this.loaded = false;
    this.hasMore = true;
    this.members = [];
    /** Who manages a private room's members (GET …/members, owner_changed); null: nobody. */
    this.owner = null;
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
    // Unread messages that mention me (the server's count; counted here when it has none).
    if (typeof info.mentions === "number") this.mentions = info.mentions;
    else this.mentions ??= 0;
  }

  /** The highest seq this client has seen; rejoining with it as `since` misses nothing. */
  get since() {
    return Math.max(this.newestSeq || 0, this.loaded ? 0 : this.headSeq);
  }

  /** Add a message; false when this seq is already held (a replay or our own echo). */
  add(msg) {
    if (this.messages.has(msg.seq)) return false;
    this.messages.set(msg.seq, msg);
    if (msg.id) this.byId.set(msg.id, msg);
    if (this.oldestSeq === null || msg.seq < this.oldestSeq) this.oldestSeq = msg.seq;
    this.seen(msg.seq);
    if (this.oldestSeq <= 1) this.hasMore = false;
    return true;
  }

  seen(seq) {
    if (this.newestSeq === null || seq > this.newestSeq) this.newestSeq = seq;
    if (seq > this.headSeq) this.headSeq = seq;
  }

  /**
   * Apply an `edit`, `delete` or `reaction` event to the message it names. Returns the
   * changed message, or null: a replay, or a message not held (history brings its state).
   */
  applyChange(event) {
    if (this.changes.has(event.seq)) return null;
    this.changes.add(event.seq);
    this.seen(event.seq);
    const msg = this.byId.get(event.id);
    if (!msg) return null;
    if (event.type === "edit" && !msg.deleted) {
      msg.text = event.text;
      msg.edited_ts = event.ts;
    } else if (event.type === "delete") {
      msg.deleted = true;
      if (event.by) msg.by = event.by; // "moderator": an admin removed it
      msg.text = "";
      delete msg.attachments;
      delete msg.edited_ts;
    } else if (event.type === "reaction") {
      const reactions = { ...(msg.reactions || {}) };
      const users = (reactions[event.emoji] || []).filter((u) => !same(u, event.user));
      if (event.on) users.push(event.user);
      if (users.length) reactions[event.emoji] = users;
      else delete reactions[event.emoji];
      msg.reactions = reactions;
    }
    return msg;
  }

  /** All held messages in seq order. */
  sorted() {
    return Array.from(this.messages.values()).sort((a, b) => a.seq - b.seq);
  }

  /** `reset`: the server's history is not what we hold (new epoch or retention). */
  reset(epoch, headSeq) {
    this.messages.clear();
    this.byId.clear();
    this.changes.clear();
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
