/**
 * `@` autocompletes member names in the composer: a list of the room's people matching what
 * follows the `@` (online first); Up/Down choose, Enter or Tab insert `@name `, Escape closes.
 */

import { avatar, el } from "./dom.js";

const MAX_SUGGESTIONS = 8;
/** `@` at the start or after a space, then the name typed so far, up to the caret. */
const AT_RE = /(^|\s)@([A-Za-z0-9_-]{0,32})$/;

const $ = (id) => document.getElementById(id);

export function bindMentions(chat, signal) {
  const input = $("message");
  const list = $("mention-list");
  let items = [];
  let index = 0;
  let start = -1;

  const close = () => {
    items = [];
    start = -1;
    list.hidden = true;
    list.replaceChildren();
    input.removeAttribute("aria-activedescendant");
    input.setAttribute("aria-expanded", "false");
  };

  const show = () => {
    list.replaceChildren(
      ...items.map((name, i) =>
        el(
          "li",
          {
            id: `mention-${i}`,
            role: "option",
            class: "mention-option",
            "aria-selected": String(i === index),
            dataset: { user: name },
            // mousedown, not click: the composer keeps its focus and caret.
            onmousedown: (e) => {
              e.preventDefault();
              pick(i);
            },
          },
          avatar(name, "small"),
          el("span", { class: "mention-name" }, name),
        ),
      ),
    );
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    input.setAttribute("aria-activedescendant", `mention-${index}`);
  };

  const update = () => {
    const room = chat.rooms.get(chat.active);
    const caret = input.selectionStart;
    const match = room && input.selectionEnd === caret ? input.value.slice(0, caret).match(AT_RE) : null;
    if (!match) return close();
    const typed = match[2].toLowerCase();
    const me = chat.me.toLowerCase();
    const names = [...new Set([...room.members, ...room.online])].filter(
      (n) => n.toLowerCase() !== me && n.toLowerCase().startsWith(typed),
    );
    names.sort((a, b) => Number(room.online.has(b)) - Number(room.online.has(a)) || a.localeCompare(b));
    items = names.slice(0, MAX_SUGGESTIONS);
    if (!items.length) return close();
    start = caret - match[2].length - 1;
    index = Math.min(index, items.length - 1);
    show();
  };

  const pick = (i) => {
    const name = items[i];
    if (!name || start < 0) return;
    const caret = input.selectionStart;
    const text = `@${name} `;
    input.value = input.value.slice(0, start) + text + input.value.slice(caret);
    const at = start + text.length;
    input.setSelectionRange(at, at);
    close();
    input.dispatchEvent(new Event("input"));
  };

  input.setAttribute("aria-controls", "mention-list");
  input.setAttribute("aria-autocomplete", "list");
  input.addEventListener("input", () => {
    index = 0;
    update();
  }, { signal });
  input.addEventListener("click", update, { signal });
  input.addEventListener("blur", close, { signal });
  // Registered before the composer's keys: while the list is open its keys are ours.
  input.addEventListener("keydown", (e) => {
    if (list.hidden || e.isComposing) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      index = (index + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      show();
    } else if (e.key === "Enter" || e.key === "Tab") {
      pick(index);
    } else if (e.key === "Escape") {
      close();
    } else {
      return;
    }
    e.preventDefault();
    e.stopImmediatePropagation();
  }, { signal });
}
