/**
 * What is happening and what was done: the Connections section (every live socket, on every
 * node: who, node, address, since, rooms; disconnect one) and the Audit log section (every
 * admin action, newest first, paged by `before`).
 */

import { admin } from "./admin-api.js";
import { ago, busy, button, confirmAction, Notice, pager, table } from "./admin-ui.js";
import { avatar, el } from "./dom.js";

const AUDIT_PAGE = 50;
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

const $ = (id) => document.getElementById(id);

export class ConnectionsSection {
  constructor() {
    this.notice = new Notice($("connections-notice"));
    this.list = $("connections-table");
    $("connections-refresh").addEventListener("click", () => this.load());
  }

  async load() {
    let connections;
    try {
      ({ connections } = await admin.connections());
    } catch (err) {
      this.notice.error(err);
      return;
    }
    const now = Date.now();
    this.list.replaceChildren(
      table(
        [
          ["User", (c) => el("span", { class: "who" }, avatar(c.user, "small"), el("span", {}, c.user))],
          ["Node", (c) => c.node || "—"],
          ["Address", (c) => c.address || "—"],
          ["Since", (c) => ago(c.since, now)],
          ["Rooms", (c) => (c.rooms || []).join(", ") || "—"],
          ["", (c) => {
            const b = button("Disconnect", () => this.disconnect(b, c), "ghost small warn", {
              "aria-label": `Disconnect ${c.user} (${c.id})`,
            });
            return b;
          }],
        ],
        connections,
        { caption: "Live connections", empty: "Nobody is connected.", rowProps: (c) => ({ dataset: { id: c.id, user: c.user } }) },
      ),
    );
    $("connections-count").textContent = `${connections.length} open`;
  }

  async disconnect(btn, conn) {
    const yes = await confirmAction({
      title: `Disconnect ${conn.user}?`,
      text: "This socket is closed now. Their client may connect again unless they are banned or disabled.",
      action: "Disconnect",
    });
    if (!yes) return;
    const ok = await busy(btn, this.notice, () => admin.disconnect(conn.id));
    if (!ok) return;
    this.notice.ok(`Disconnected ${conn.user}.`);
    await this.load();
  }
}

function detailText(detail) {
  if (detail === null || detail === undefined || detail === "") return "";
  if (typeof detail === "string") return detail;
  return Object.entries(detail)
    .map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`)
    .join(", ");
}

export class AuditSection {
  constructor() {
    this.notice = new Notice($("audit-notice"));
    this.list = $("audit-table");
    this.entries = [];
    this.next = null;
    this.more = pager("Older entries", () => this.load(true));
    this.list.after(this.more);
    $("audit-refresh").addEventListener("click", () => this.load());
  }

  async load(more = false) {
    try {
      const page = await admin.audit({ limit: AUDIT_PAGE, before: more ? this.next : undefined });
      this.entries = more ? [...this.entries, ...page.entries] : page.entries;
      this.next = page.next || null;
    } catch (err) {
      this.notice.error(err);
      return;
    }
    this.list.replaceChildren(
      table(
        [
          ["When", (e) => el("time", { datetime: new Date(e.ts).toISOString() }, fullFmt.format(new Date(e.ts)))],
          ["Who", (e) => e.actor],
          ["Action", (e) => el("code", {}, e.action)],
          ["Target", (e) => e.target || "—"],
          ["Detail", (e) => detailText(e.detail)],
        ],
        this.entries,
        { caption: "Audit log, newest first", empty: "No admin actions yet.", rowProps: (e) => ({ dataset: { action: e.action } }) },
      ),
    );
    this.more.hidden = !this.next;
  }
}
