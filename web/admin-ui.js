/** Pieces the admin page's sections share: tables, times, badges, a confirm dialog, notices. */

import { el } from "./dom.js";

export { confirmAction } from "./confirm.js";

const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;

/** A <time> "5 min ago" (the full date in its title); "—" for none. */
export function ago(ts, now = Date.now()) {
  if (ts === null || ts === undefined || ts === 0) return el("span", { class: "none" }, "—");
  const d = new Date(ts);
  const age = now - ts;
  let text;
  if (age < MINUTE_MS) text = "just now";
  else if (age < HOUR_MS) text = `${Math.floor(age / MINUTE_MS)} min ago`;
  else if (age < DAY_MS) text = `${Math.floor(age / HOUR_MS)} h ago`;
  else text = fullFmt.format(d);
  return el("time", { datetime: d.toISOString(), title: fullFmt.format(d) }, text);
}

/** "until 14:05" style absolute time, for mutes and link expiry. */
export function when(ts) {
  const d = new Date(ts);
  return el("time", { datetime: d.toISOString() }, fullFmt.format(d));
}

export function badge(text, kind = "") {
  return el("span", { class: `badge ${kind}`.trim() }, text);
}

/** The badges of a user's standing: admin, banned, disabled, muted until …. */
export function userBadges(user, now = Date.now()) {
  const out = [];
  if (user.role === "admin") out.push(badge("admin", "accent"));
  if (user.banned) out.push(badge("banned", "danger"));
  if (user.disabled) out.push(badge("disabled", "warn"));
  if (user.muted_until && user.muted_until > now) {
    const b = badge("muted", "warn");
    b.title = `Muted until ${fullFmt.format(new Date(user.muted_until))}`;
    out.push(b);
  }
  return out;
}

/**
 * A table: `columns` are [heading, (row) => cell content]; `rowProps(row)` adds attributes
 * (e.g. dataset) to each <tr>. Content is text or nodes, never markup.
 */
export function table(columns, rows, { caption, rowProps = () => ({}), empty = "Nothing here." } = {}) {
  const head = el("thead", {}, el("tr", {}, ...columns.map(([h]) => el("th", { scope: "col" }, h))));
  const body = el(
    "tbody",
    {},
    ...rows.map((row) => el("tr", rowProps(row), ...columns.map(([, cell]) => el("td", {}, cell(row))))),
  );
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: String(columns.length), class: "none" }, empty)));
  return el("table", { class: "grid" }, caption ? el("caption", { class: "sr-only" }, caption) : null, head, body);
}

export function button(label, onclick, cls = "ghost small", extra = {}) {
  return el("button", { type: "button", class: cls, onclick, ...extra }, label);
}

/** Run `work` with the button disabled; an error is shown in `notice`; true if it went well. */
export async function busy(btn, notice, work) {
  btn.disabled = true;
  notice.clear();
  try {
    await work();
    return true;
  } catch (err) {
    notice.error(err);
    return false;
  } finally {
    btn.disabled = false;
  }
}

/** A section's one-line status: errors (role=alert) and confirmations. */
export class Notice {
  constructor(node) {
    this.node = node;
  }

  clear() {
    this.node.textContent = "";
    this.node.className = "admin-notice";
  }

  ok(text) {
    this.node.textContent = text;
    this.node.className = "admin-notice ok";
  }

  error(err) {
    // The session ended (signed out elsewhere), or this admin was demoted: off to the chat.
    if (err && (err.status === 401 || (err.status === 403 && err.code === "forbidden"))) {
      location.replace("/");
      return;
    }
    const code = err && err.code ? ` (${err.code})` : "";
    this.node.textContent = `${(err && err.message) || String(err)}${code}`;
    this.node.className = "admin-notice error";
  }
}

/** A "Load more" button under a paged list; hidden when there is no next page. */
export function pager(label, onMore) {
  const node = button(label, onMore, "ghost small more");
  node.hidden = true;
  return node;
}

const SEARCH_DEBOUNCE_MS = 250;

/**
 * A list searched by a text box and read page by page, with a "More" button after it:
 * `fetchPage({q, limit, after})` answers `{[key]: [...], next}`; `render()` draws
 * `this.items`. Errors go to `notice`.
 */
export class SearchPages {
  constructor({ search, list, label, key, fetchPage, notice, render, limit = 50 }) {
    Object.assign(this, { search, key, fetchPage, notice, render, limit });
    this.items = [];
    this.next = null;
    this.more = pager(label, () => this.load(true));
    list.after(this.more);
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.load(), SEARCH_DEBOUNCE_MS);
    });
  }

  async load(more = false) {
    const q = this.search.value.trim();
    try {
      const page = await this.fetchPage({ q, limit: this.limit, after: more ? this.next : undefined });
      this.items = more ? [...this.items, ...page[this.key]] : page[this.key];
      this.next = page.next || null;
    } catch (err) {
      this.notice.error(err);
      return;
    }
    this.render();
  }

  /** After `render`: the "More" button shows only while there is a next page. */
  rendered() {
    this.more.hidden = !this.next;
  }
}
