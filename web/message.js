/**
 * One message as a list item: author and time, the reply quote, the text (or a deleted
 * message's tombstone), its attachments (attachments.js), "edited", reaction chips, the send
 * state, and the hover/long-press actions (reply, react, edit, delete). User text only ever
 * becomes text nodes.
 */

import { attachmentsEl } from "./attachments.js";
import { avatar, el, srOnly } from "./dom.js";
import { renderText } from "./format.js";
import { deletedText } from "./moderation.js";

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
/** How much of the original a reply quote shows. */
const QUOTE_CHARS = 80;

export function timeEl(ts) {
  const d = new Date(ts);
  const today = d.toDateString() === new Date().toDateString();
  return el(
    "time",
    { datetime: d.toISOString(), title: fullFmt.format(d) },
    today ? timeFmt.format(d) : fullFmt.format(d),
  );
}

const STATE_TEXT = { pending: "Sending…", delivered: "Delivered", failed: "Not sent" };

export function stateEl(state, reason, actions) {
  const text = state === "failed" && reason ? `Not sent: ${reason}` : STATE_TEXT[state];
  if (state === "delivered") return el("span", { class: "state", title: text }, "✓", srOnly(text));
  if (state === "failed" && actions) {
    return el(
      "span",
      { class: "state", title: text },
      text,
      " ",
      el("button", { type: "button", class: "link retry", onclick: actions.retry }, "Retry"),
      " · ",
      el("button", { type: "button", class: "link discard", onclick: actions.discard }, "Discard"),
    );
  }
  return el("span", { class: "state", title: text }, text);
}

const same = (a, b) => String(a).toLowerCase() === String(b).toLowerCase();

/** "bob: the first words of it…" (or its files' names) for a reply quote or the reply banner. */
export function quoteText(original) {
  if (!original) return "an earlier message";
  if (original.deleted) return `${original.user}: (deleted)`;
  const files = (original.attachments || []).map((a) => a.name).join(", ");
  const text = String(original.text || "").replace(/\s+/g, " ").trim() || files;
  const short = text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text;
  return `${original.user}: ${short}`;
}

/** Does `msg` mention `me` (the server's `mentions`, or an @me in the text)? */
export function mentionsMe(msg, me) {
  if (Array.isArray(msg.mentions)) return msg.mentions.some((m) => same(m, me));
  return new RegExp(`(^|[^\\w@])@${me.replace(/[-]/g, "\\-")}(?![\\w-])`, "i").test(msg.text || "");
}

function reactionChips(msg, me, actions) {
  const entries = Object.entries(msg.reactions || {}).filter(([, users]) => users.length);
  if (!entries.length) return null;
  return el(
    "div",
    { class: "reactions" },
    ...entries.map(([emoji, users]) => {
      const mine = users.some((u) => same(u, me));
      return el(
        "button",
        {
          type: "button",
          class: mine ? "chip mine" : "chip",
          "aria-pressed": String(mine),
          title: users.join(", "),
          dataset: { emoji },
          onclick: () => actions && actions.react(msg, emoji, !mine),
        },
        el("span", { class: "emoji" }, emoji),
        el("span", { class: "count" }, String(users.length)),
        srOnly(` by ${users.join(", ")}`),
      );
    }),
  );
}

function actionBar(msg, own, actions) {
  const button = (cls, label, icon, fn) =>
    el("button", { type: "button", class: `act ${cls}`, title: label, "aria-label": label, onclick: fn }, icon);
  return el(
    "div",
    { class: "actions", role: "toolbar", "aria-label": "Message actions" },
    button("reply", "Reply", "↩", () => actions.reply(msg)),
    button("react", "React", "☺", (e) => actions.pick(msg, e.currentTarget)),
    own ? button("edit", "Edit", "✎", () => actions.edit(msg)) : null,
    own ? button("delete", "Delete", "✕", () => actions.remove(msg)) : null,
  );
}

/**
 * @param {object} msg a message (history's current state, or a pending send: seq null)
 * @param {object} opts {own, me, state, reason, actions, lookup(id) -> message|undefined}
 */
export function messageNode(msg, { own, me, state, reason, actions, lookup }) {
  const meta = el("div", { class: "meta" }, el("span", { class: "author" }, msg.user), timeEl(msg.ts));
  const quote = msg.reply_to
    ? el(
        "button",
        {
          type: "button",
          class: "reply-quote",
          dataset: { replyTo: msg.reply_to },
          onclick: () => actions && actions.jump(msg.reply_to),
        },
        srOnly("In reply to "),
        quoteText(lookup && lookup(msg.reply_to)),
      )
    : null;
  // A deleted message is only its tombstone: no text, no files (the server drops both).
  let text = null;
  if (msg.deleted) text = el("div", { class: "text tombstone" }, deletedText(msg));
  else if (msg.text) text = renderText(el("div", { class: "text" }), msg.text);
  const bubble = el(
    "div",
    { class: "bubble" },
    own ? srOnly("You said: ") : null,
    text,
    msg.edited_ts && !msg.deleted ? el("span", { class: "edited", title: fullFmt.format(new Date(msg.edited_ts)) }, "(edited)") : null,
    msg.deleted ? null : attachmentsEl(msg.attachments),
  );
  const foot = own ? el("div", { class: "foot" }, stateEl(state, reason)) : null;
  const live = msg.seq !== null && msg.seq !== undefined && !msg.deleted && actions;
  const classes = ["msg"];
  if (own) classes.push("own");
  if (msg.deleted) classes.push("deleted");
  if (!own && me && !msg.deleted && mentionsMe(msg, me)) classes.push("mention");
  return el(
    "li",
    {
      class: classes.join(" "),
      dataset: { user: msg.user, ts: String(msg.ts), ...(msg.id ? { id: msg.id } : {}), ...(state ? { state } : {}) },
    },
    own ? null : avatar(msg.user),
    el(
      "div",
      { class: "body" },
      meta,
      quote,
      bubble,
      msg.deleted ? null : reactionChips(msg, me, actions),
      foot,
      live ? actionBar(msg, own, actions) : null,
    ),
  );
}
