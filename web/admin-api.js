/** REST client for /api/admin/* (docs/PROTOCOL.md "Admin API"); the server authorises every call. */

import { request } from "./api.js";

const seg = encodeURIComponent;

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, String(value));
  }
  const qs = q.toString();
  return qs ? `?${qs}` : "";
}

const user = (name, action) => `/api/admin/users/${seg(name)}/${action}`;
const room = (name, action) => `/api/admin/rooms/${seg(name)}/${action}`;

export const admin = {
  /** {users: [...], next}: `next` goes back as `after` for the next page. */
  users: ({ q, after, limit } = {}) => request("GET", `/api/admin/users${query({ q, after, limit })}`),
  /** The user object and sessions_list: [{id, created, last_used, address}]. */
  user: (name) => request("GET", `/api/admin/users/${seg(name)}`),
  /** disable | enable | ban | unban | signout | unmute: each answers the user object. */
  userAction: (name, action) => request("POST", user(name, action), {}),
  mute: (name, seconds) => request("POST", user(name, "mute"), { seconds }),
  /** {link: "/reset#<token>", expires}. */
  resetPassword: (name) => request("POST", user(name, "reset-password"), {}),

  rooms: ({ q, after, limit } = {}) => request("GET", `/api/admin/rooms${query({ q, after, limit })}`),
  members: (name) => request("GET", room(name, "members")),
  /** archive | unarchive | private. */
  roomAction: (name, action) => request("POST", room(name, action), {}),
  deleteRoom: (name) => request("DELETE", `/api/admin/rooms/${seg(name)}`),
  /** The newest messages of a room, for moderation (the admin need not be a member). */
  messages: (name, { before, limit } = {}) =>
    request("GET", `/api/rooms/${seg(name)}/messages${query({ before, limit })}`),
  deleteMessage: (name, id) => request("DELETE", `/api/admin/rooms/${seg(name)}/messages/${seg(id)}`),

  connections: () => request("GET", "/api/admin/connections"),
  disconnect: (id) => request("DELETE", `/api/admin/connections/${seg(id)}`),

  /** {entries, next}, newest first; `next` goes back as `before`. */
  audit: ({ before, limit } = {}) => request("GET", `/api/admin/audit${query({ before, limit })}`),
  stats: () => request("GET", "/api/admin/stats"),
};
