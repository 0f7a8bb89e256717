/** Entry point: find out who is signed in (the cookie), then show the login form or the chat. */

import { bindAccount } from "./account.js";
import { api } from "./api.js";
import { Chat } from "./chat.js";

const $ = (id) => document.getElementById(id);
const NAME_RE = /^[A-Za-z0-9_-]{1,32}$/;
const MIN_PASSWORD = 8;

const AUTH_MESSAGES = {
  bad_credentials: "Wrong username or password.",
  name_taken: "That username is taken. Try another, or log in.",
  banned: "This account is banned.",
  disabled: "This account is disabled. Ask an admin to re-enable it.",
  network: "Cannot reach the server. Check your connection and try again.",
};

let chat = null;

function show(view) {
  $("boot").hidden = true;
  $("auth").hidden = view !== "auth";
  $("chat").hidden = view !== "chat";
}

function showLogin(notice = "") {
  chat = null;
  show("auth");
  $("auth-error").textContent = notice;
  $("auth-password").value = "";
  $("auth-name").focus();
}

async function startChat(me, expiresAt) {
  show("chat");
  chat = new Chat(me, { onSignedOut: showLogin, expiresAt });
  const current = chat;
  bindAccount(me, {
    // The server closes this session's socket (4001) too, maybe before its 204 arrives.
    onDeleted: (notice) => {
      if (!current.stopped) current.stop();
      showLogin(notice);
    },
  });
  try {
    await chat.start();
  } catch (err) {
    if (err.status === 401) {
      chat.stop();
      showLogin("Your session has ended. Please log in again.");
      return;
    }
    throw err;
  }
  if (!window.matchMedia("(max-width: 760px)").matches) $("message").focus();
}

/** "3 minutes", "45 seconds": how long a 429 (or a busy 503) asks us to wait. */
function waitText(seconds) {
  if (seconds >= 90) {
    const minutes = Math.ceil(seconds / 60);
    return `${minutes} minute${minutes === 1 ? "" : "s"}`;
  }
  return `${seconds} second${seconds === 1 ? "" : "s"}`;
}

function authProblem(err) {
  if (err.code === "rate_limited" && err.retryAfter) {
    return `Too many attempts. Try again in ${waitText(err.retryAfter)}.`;
  }
  if (err.code === "overloaded" && err.retryAfter) {
    return `The server is busy. Try again in ${waitText(err.retryAfter)}.`;
  }
  return AUTH_MESSAGES[err.code] || err.message || "Something went wrong.";
}

function validate(name, password) {
  if (!NAME_RE.test(name)) return "Usernames are 1–32 letters, digits, _ or -.";
  if (password.length < MIN_PASSWORD) return `Passwords have at least ${MIN_PASSWORD} characters.`;
  return "";
}

async function onAuthSubmit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const signup = event.submitter && event.submitter.value === "signup";
  const name = $("auth-name").value.trim();
  const password = $("auth-password").value;
  const problem = validate(name, password);
  if (problem) {
    $("auth-error").textContent = problem;
    return;
  }
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => (b.disabled = true));
  $("auth-error").textContent = "";
  try {
    if (signup) await api.register(name, password);
    const session = await api.login(name, password);
    const me = session.user && session.user.role ? session.user : await api.me(); // role: the Admin link
    $("auth-password").value = "";
    await startChat(me, session.expires_at);
  } catch (err) {
    $("auth-error").textContent = authProblem(err);
  } finally {
    buttons.forEach((b) => (b.disabled = false));
  }
}

async function boot() {
  $("auth-form").addEventListener("submit", onAuthSubmit);
  let me;
  try {
    me = await api.me();
  } catch (err) {
    showLogin(err.status === 0 ? AUTH_MESSAGES.network : "");
    return;
  }
  await startChat(me);
}

boot();
