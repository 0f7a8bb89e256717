/**
 * The signed-in person's own account, in the sidebar: an "Admin" link for admins, and
 * "Account" settings to change the password (every other session ends) or delete the
 * account (PUT /api/me/password, DELETE /api/me). Built here so index.html stays the chat's.
 */

import { api } from "./api.js";
import { el } from "./dom.js";

const MIN_PASSWORD = 8;
const $ = (id) => document.getElementById(id);

function field(id, label, autocomplete) {
  return [
    el("label", { for: id }, label),
    el("input", { id, type: "password", autocomplete, minlength: String(MIN_PASSWORD), required: true }),
  ];
}

function accountDialog() {
  const close = el("button", { type: "button", class: "ghost", value: "cancel" }, "Close");
  const dialog = el(
    "dialog",
    { id: "account-dialog", "aria-labelledby": "account-dialog-title" },
    el(
      "div",
      { class: "dialog-card" },
      el("h2", { id: "account-dialog-title" }, "Account"),
      el(
        "form",
        { id: "password-form", class: "account-form", novalidate: true },
        el("h3", {}, "Change password"),
        ...field("password-old", "Current password", "current-password"),
        ...field("password-new", "New password", "new-password"),
        el("p", { class: "hint" }, "Your other sessions are signed out; this one stays."),
        el("p", { class: "form-error", role: "alert", id: "password-error" }),
        el("div", { class: "dialog-actions" }, el("button", { type: "submit", class: "primary" }, "Change password")),
      ),
      el(
        "form",
        { id: "delete-form", class: "account-form danger-zone", novalidate: true },
        el("h3", {}, "Delete my account"),
        el(
          "p",
          { class: "hint" },
          "Your messages stay and show as “deleted user”; you are signed out everywhere, and your name may be taken by someone else.",
        ),
        ...field("delete-password", "Your password", "current-password"),
        el("p", { class: "form-error", role: "alert", id: "delete-error" }),
        el("div", { class: "dialog-actions" }, el("button", { type: "submit", class: "danger" }, "Delete my account")),
      ),
      el("div", { class: "dialog-actions" }, close),
    ),
  );
  close.addEventListener("click", () => dialog.close());
  return dialog;
}

async function submitWith(form, errorNode, work) {
  const submit = form.querySelector("button[type=submit]");
  errorNode.textContent = "";
  errorNode.classList.remove("ok");
  submit.disabled = true;
  try {
    await work();
  } catch (err) {
    errorNode.textContent =
      err.code === "bad_credentials" ? "That is not your current password." : err.message || String(err);
  } finally {
    submit.disabled = false;
  }
}

/**
 * Add the account controls for `me` ({name, role}); `onDeleted(notice)` signs the page out.
 * Called on every sign-in: what an earlier one added is replaced.
 */
export function bindAccount(me, { onDeleted }) {
  $("account-links")?.remove();
  $("account-dialog")?.remove();
  const dialog = accountDialog();
  document.body.append(dialog);
  const links = el(
    "div",
    { id: "account-links", class: "account-links" },
    me.role === "admin" ? el("a", { href: "/admin", class: "ghost small", id: "admin-link" }, "Admin") : null,
    el("button", { type: "button", class: "ghost small", id: "account-button", onclick: () => dialog.showModal() }, "Account"),
  );
  document.querySelector(".sidebar-foot").before(links);

  const pw = $("password-form");
  pw.addEventListener("submit", (e) => {
    e.preventDefault();
    const error = $("password-error");
    const next = $("password-new").value;
    if (next.length < MIN_PASSWORD) {
      error.textContent = `Passwords have at least ${MIN_PASSWORD} characters.`;
      return;
    }
    submitWith(pw, error, async () => {
      await api.changePassword($("password-old").value, next);
      pw.reset();
      error.textContent = "Password changed. Your other sessions were signed out.";
      error.classList.add("ok");
    });
  });
  const del = $("delete-form");
  del.addEventListener("submit", (e) => {
    e.preventDefault();
    submitWith(del, $("delete-error"), async () => {
      await api.deleteAccount($("delete-password").value);
      dialog.close();
      onDeleted("Your account has been deleted.");
    });
  });
}
