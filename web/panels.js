/** Chrome around the conversation: sidebar, header and people panel, dialogs, account controls. */

import { api } from "./api.js";
import { avatar, renderPeople, renderRoomList, typingText } from "./view.js";

const $ = (id) => document.getElementById(id);
/** Below this width the sidebar is a drawer; below PEOPLE_WIDE the people panel is one too. */
const NARROW = window.matchMedia("(max-width: 760px)");
const PEOPLE_WIDE = window.matchMedia("(min-width: 1100px)");

/**
 * Run a <dialog> form: `action(form)` does the work; an error it throws is shown in the
 * dialog and keeps it open, success closes it. What `action` returns (a function) runs
 * after the dialog has closed, so focus and keys go to the page again.
 */
function bindDialog(dialog, action, signal) {
  const form = dialog.querySelector("form");
  const error = dialog.querySelector(".form-error");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    try {
      const then = await action(form);
      dialog.close();
      form.reset();
      if (then) await then();
    } catch (err) {
      if (dialog.open) error.textContent = err.message || String(err);
    } finally {
      submit.disabled = false;
    }
  }, { signal });
  form.querySelector("button[value=cancel]").addEventListener("click", () => dialog.close(), { signal });
  return () => {
    error.textContent = "";
    dialog.showModal();
  };
}

export function bindPanels(chat, signal) {
  const root = $("chat");
  const on = (id, type, fn) => $(id).addEventListener(type, fn, { signal });

  $("me-avatar").replaceChildren(avatar(chat.me, "small"));
  $("me-name").textContent = chat.me;
  on("logout", "click", () => chat.logout());
  on("more-rooms", "click", () => chat.loadMoreRooms());

  const setSidebar = (open) => {
    root.classList.toggle("sidebar-open", open);
    $("scrim").hidden = !open;
    $("open-sidebar").setAttribute("aria-expanded", String(open));
    if (open) $("sidebar").querySelector("[aria-current=page], button.room-link")?.focus();
  };
  const closeSidebar = (refocus = false) => {
    if (!root.classList.contains("sidebar-open")) return;
    setSidebar(false);
    if (refocus) $("open-sidebar").focus();
  };
  on("open-sidebar", "click", () => setSidebar(true));
  on("close-sidebar", "click", () => closeSidebar(true));
  on("scrim", "click", () => {
    closeSidebar();
    setPeople(false);
  });

  // The people panel is shown by default on wide screens and is a drawer on narrow ones.
  const peopleShown = () =>
    PEOPLE_WIDE.matches ? !root.classList.contains("people-collapsed") : root.classList.contains("people-open");
  const setPeople = (show) => {
    if (PEOPLE_WIDE.matches) root.classList.toggle("people-collapsed", !show);
    else root.classList.toggle("people-open", show);
    if (!PEOPLE_WIDE.matches) $("scrim").hidden = !show && !root.classList.contains("sidebar-open");
    $("toggle-people").setAttribute("aria-expanded", String(peopleShown()));
  };
  on("toggle-people", "click", () => setPeople(!peopleShown()));
  $("toggle-people").setAttribute("aria-expanded", String(peopleShown()));
  PEOPLE_WIDE.addEventListener("change", () => {
    root.classList.remove("people-open", "people-collapsed");
    $("scrim").hidden = !root.classList.contains("sidebar-open");
    $("toggle-people").setAttribute("aria-expanded", String(peopleShown()));
  }, { signal });
  NARROW.addEventListener("change", () => setSidebar(false), { signal });

  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || document.querySelector("dialog[open]")) return;
    closeSidebar(true);
    if (!PEOPLE_WIDE.matches) setPeople(false);
  }, { signal });

  const newRoom = bindDialog($("room-dialog"), async (form) => {
    const name = form.querySelector("#room-name").value.trim().toLowerCase();
    const room = await api.createRoom(name, form.querySelector("#room-private").checked);
    chat.addRoom(room);
    renderRooms(chat);
    return () => chat.open(room.name);
  }, signal);
  on("new-room", "click", newRoom);

  const newDm = bindDialog($("dm-dialog"), async (form) => {
    const room = await api.openDm(form.querySelector("#dm-user").value.trim());
    const held = chat.addRoom(room);
    await chat.loadMembers(held);
    return () => chat.open(room.name);
  }, signal);
  on("new-dm", "click", newDm);

  const addMember = bindDialog($("member-dialog"), async (form) => {
    const room = chat.rooms.get(chat.active);
    const { members } = await api.addMember(room.name, form.querySelector("#member-user").value.trim());
    room.members = members;
    renderRoom(chat);
  }, signal);
  on("add-member", "click", addMember);
  on("notice-dismiss", "click", () => {
    $("chat-notice").hidden = true;
  });

  return { closeSidebar };
}

// ---- rendering the chrome from the chat's state ----------------------------------------

export function renderRooms(chat) {
  const all = [...chat.rooms.values()].sort((a, b) => a.label(chat.me).localeCompare(b.label(chat.me)));
  const opts = { active: chat.active, me: chat.me, onOpen: (name) => chat.open(name), presence: chat.presence };
  renderRoomList($("room-list"), all.filter((r) => !r.dm), opts);
  renderRoomList($("dm-list"), all.filter((r) => r.dm), opts);
  $("more-rooms").hidden = !chat.roomsNext;
  const unread = all.reduce((n, r) => n + (r.name === chat.active ? 0 : r.unread), 0);
  document.title = unread ? `(${unread}) NoChat` : "NoChat";
}

export function renderRoom(chat) {
  const room = chat.rooms.get(chat.active);
  if (!room) return;
  const label = room.label(chat.me);
  $("room-title").textContent = room.dm ? label : `# ${label}`;
  $("room-kind").textContent = room.dm ? "Direct conversation" : room.private ? "Private room" : "Public room";
  $("add-member").hidden = !chat.owners.manages(room); // only the owner adds members
  $("message").placeholder = room.dm ? `Message ${label}` : `Message #${label}`;
  renderPeople($("member-list"), room, chat.presence, (name) => chat.owners.menuFor(room, name));
  $("online-count").textContent = `${room.online.size} online`;
  renderOlder(chat, room);
  renderTyping(chat);
}

export function renderOlder(chat, room) {
  if (room.name !== chat.active) return;
  $("load-older").hidden = !(room.loaded && room.hasMore);
  const start = $("room-start");
  start.hidden = !(room.loaded && !room.hasMore);
  start.textContent = room.dm
    ? `This is the beginning of your conversation with ${room.label(chat.me)}.`
    : `This is the very beginning of #${room.name}.`;
}

export function renderTyping(chat) {
  const room = chat.rooms.get(chat.active);
  const text = room ? typingText(room.typing()) : "";
  const node = $("typing");
  if (node.textContent !== text) node.textContent = text;
}

/** A line above the conversation until dismissed: what happened to me ("You were removed from #team"). */
export function showNotice(text) {
  const box = $("chat-notice");
  box.querySelector(".notice-text").textContent = text;
  box.hidden = false;
}

export function showRoomNotice(chat, room, text) {
  if (room.name !== chat.active) return;
  const start = $("room-start");
  start.hidden = false;
  start.textContent = text;
}
