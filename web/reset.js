/** The /reset page: the one-time token from an admin's link (in the #fragment) and a new password. */

import { api } from "./api.js";

const MIN_PASSWORD = 8;
const $ = (id) => document.getElementById(id);

const PROBLEMS = {
  invalid_token: "This link has expired or was already used. Ask an admin for a new one.",
  network: "Cannot reach the server. Check your connection and try again.",
};

// The fragment never reaches the server or a Referer; drop it from the address bar as well.
const token = decodeURIComponent(location.hash.slice(1));
history.replaceState(null, "", location.pathname);

const form = $("reset-form");
const error = $("reset-error");
if (!token) error.textContent = "This page needs the link an admin gave you.";

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const password = $("reset-password").value;
  if (!token) return;
  if (password.length < MIN_PASSWORD) {
    error.textContent = `Passwords have at least ${MIN_PASSWORD} characters.`;
    return;
  }
  if (password !== $("reset-again").value) {
    error.textContent = "The two passwords differ.";
    return;
  }
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  error.textContent = "";
  try {
    await api.resetPassword(token, password);
  } catch (err) {
    error.textContent = PROBLEMS[err.code] || err.message || "Something went wrong.";
    submit.disabled = false;
    return;
  }
  form.querySelectorAll("input").forEach((input) => {
    input.value = "";
    input.disabled = true;
  });
  submit.hidden = true;
  $("reset-done").hidden = false;
});
