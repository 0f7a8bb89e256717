/**
 * The search box over all my rooms: results (newest first) with the matched words marked;
 * a result opens its room at the message. The server's snippet marks matches with « »
 * (plain text): the marks become <mark> elements here, the words stay text nodes.
 */

import { api } from "./api.js";
import { avatar, el } from "./dom.js";
import { timeEl } from "./message.js";

const PAGE = 20;
const $ = (id) => document.getElementById(id);

/** "a «b» c" -> [text "a ", <mark>b</mark>, text " c"]. */
export function snippetNodes(snippet) {
  const nodes = [];
  let rest = String(snippet);
  for (;;) {
    const open = rest.indexOf("«");
    const close = open < 0 ? -1 : rest.indexOf("»", open + 1);
    if (open < 0 || close < 0) break;
    if (open > 0) nodes.push(document.createTextNode(rest.slice(0, open)));
    nodes.push(el("mark", {}, rest.slice(open + 1, close)));
    rest = rest.slice(close + 1);
  }
  if (rest) nodes.push(document.createTextNode(rest));
  return nodes;
}

export function bindSearch(chat, signal) {
  const form = $("search-form");
  const input = $("search");
  const panel = $("search-results");
  const list = $("search-list");
  const more = $("search-more");
  const summary = $("search-summary");
  let query = "";
  let next = null;

  const close = () => {
    panel.hidden = true;
    list.replaceChildren();
    next = null;
  };

  const row = (r) => {
    const room = chat.rooms.get(r.room);
    const where = room ? (room.dm ? room.label(chat.me) : `#${room.name}`) : `#${r.room}`;
    return el(
      "li",
      {},
      el(
        "button",
        {
          type: "button",
          class: "result",
          dataset: { room: r.room, id: r.id },
          onclick: async () => {
            close();
            await chat.openAt(r.room, r.id);
          },
        },
        avatar(r.user, "small"),
        el(
          "span",
          { class: "result-body" },
          el("span", { class: "result-meta" }, el("strong", {}, r.user), ` in ${where} · `, timeEl(r.ts)),
          el("span", { class: "result-text" }, ...snippetNodes(r.snippet || r.text)),
        ),
      ),
    );
  };

  const load = async (fresh) => {
    let page;
    try {
      page = await api.search(query, { before: fresh ? undefined : next, limit: PAGE });
    } catch (err) {
      summary.textContent = `Search failed: ${err.message}`;
      panel.hidden = false;
      return;
    }
    if (fresh) list.replaceChildren();
    list.append(...page.results.map(row));
    next = page.next || null;
    more.hidden = !next;
    const n = list.children.length;
    summary.textContent = n ? `Results for “${query}”` : `Nothing found for “${query}”`;
    panel.hidden = false;
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    query = input.value.trim();
    if (!query) return close();
    chat.panels.closeSidebar();
    load(true);
  }, { signal });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Escape") {
      input.value = "";
      close();
    }
  }, { signal });
  more.addEventListener("click", () => load(false), { signal });
  $("search-close").addEventListener("click", close, { signal });
}
