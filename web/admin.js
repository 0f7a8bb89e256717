/**
 * Entry point of /admin: only an admin gets the page (a member goes to the chat, a signed-out
 * visitor to the sign-in form; the server refuses every /api/admin call of theirs anyway).
 */

import { AuditSection, ConnectionsSection } from "./admin-activity.js";
import { Charts, REFRESH_MS } from "./admin-charts.js";
import { RoomsSection } from "./admin-rooms.js";
import { Notice } from "./admin-ui.js";
import { UsersSection } from "./admin-users.js";
import { api } from "./api.js";

const $ = (id) => document.getElementById(id);
const TABS = ["users", "rooms", "connections", "audit"];

function bindTabs(sections) {
  let timer = null;
  const show = (tab) => {
    for (const name of TABS) {
      const on = name === tab;
      $(`tab-${name}`).setAttribute("aria-selected", String(on));
      $(`tab-${name}`).tabIndex = on ? 0 : -1;
      $(`panel-${name}`).hidden = !on;
    }
    history.replaceState(null, "", `#${tab}`);
    sections[tab].load();
    // Live connections change by themselves: keep the open list fresh.
    clearInterval(timer);
    if (tab === "connections") {
      timer = setInterval(() => {
        if (!document.hidden) sections.connections.load();
      }, REFRESH_MS);
    }
  };
  const tablist = document.querySelector("[role=tablist]");
  tablist.addEventListener("click", (e) => {
    const tab = e.target.closest("[role=tab]");
    if (tab) show(tab.dataset.tab);
  });
  tablist.addEventListener("keydown", (e) => {
    if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
    const at = TABS.indexOf(document.activeElement.dataset.tab);
    const next = TABS[(at + (e.key === "ArrowRight" ? 1 : TABS.length - 1)) % TABS.length];
    show(next);
    $(`tab-${next}`).focus();
  });
  const wanted = location.hash.slice(1);
  show(TABS.includes(wanted) ? wanted : "users");
}

async function boot() {
  let me;
  try {
    me = await api.me();
  } catch {
    location.replace("/"); // signed out (or the server is away): the sign-in form
    return;
  }
  if (me.role !== "admin") {
    location.replace("/"); // members have the chat; the admin API answers them 403
    return;
  }
  $("boot").hidden = true;
  $("admin").hidden = false;
  $("admin-me").textContent = `Signed in as ${me.name}`;
  new Charts($("charts"), new Notice($("charts-notice"))).start();
  bindTabs({
    users: new UsersSection(),
    rooms: new RoomsSection(),
    connections: new ConnectionsSection(),
    audit: new AuditSection(),
  });
}

boot();
