/**
 * Asking before something that cannot be undone, in a modal <dialog> (built here once per
 * page: the chat and the admin page share it). Resolves true when confirmed.
 */

import { el } from "./dom.js";

function confirmDialog() {
  const found = document.getElementById("confirm-dialog");
  if (found) return found;
  const dialog = el(
    "dialog",
    { id: "confirm-dialog", "aria-labelledby": "confirm-title" },
    el(
      "form",
      { method: "dialog", class: "dialog-card" },
      el("h2", { id: "confirm-title" }),
      el("p", { id: "confirm-text" }),
      el("label", { id: "confirm-label", for: "confirm-input" }, "Type the room's name to confirm"),
      el("input", { id: "confirm-input", autocomplete: "off", autocapitalize: "none", spellcheck: "false" }),
      el(
        "div",
        { class: "dialog-actions" },
        el("button", { type: "button", value: "cancel", class: "ghost" }, "Cancel"),
        el("button", { type: "submit", value: "ok", class: "danger" }, "Delete"),
      ),
    ),
  );
  document.body.append(dialog);
  return dialog;
}

/**
 * `title` and `text` say what will happen; `action` names the button that does it.
 * `expect`, when given, must be typed to confirm (the room's name before deleting it).
 */
export function confirmAction({ title, text, action = "Delete", expect }) {
  const dialog = confirmDialog();
  const form = dialog.querySelector("form");
  const input = dialog.querySelector("#confirm-input");
  const ok = dialog.querySelector("button[value=ok]");
  dialog.querySelector("#confirm-title").textContent = title;
  dialog.querySelector("#confirm-text").textContent = text;
  dialog.querySelector("#confirm-label").hidden = !expect;
  input.hidden = !expect;
  input.value = "";
  ok.textContent = action;
  ok.disabled = Boolean(expect);
  input.oninput = () => {
    ok.disabled = input.value.trim() !== expect;
  };
  return new Promise((resolve) => {
    const done = (yes) => {
      form.onsubmit = null;
      dialog.querySelector("button[value=cancel]").onclick = null;
      dialog.close();
      resolve(yes);
    };
    form.onsubmit = (e) => {
      e.preventDefault();
      done(true);
    };
    dialog.querySelector("button[value=cancel]").onclick = () => done(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
    (expect ? input : ok).focus();
  });
}
