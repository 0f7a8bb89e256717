/** REST client for NoChat's /api (docs/PROTOCOL.md). The HttpOnly session cookie does the auth. */

export class ApiError extends Error {
  /** status 0 means the server could not be reached at all; retryAfter (seconds) comes
   * from a 429/503's Retry-After header, else 0. */
  constructor(status, code, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** One JSON request; a non-2xx answer throws ApiError with the server's error code. */
export async function request(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, "network", "Cannot reach the server.");
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    const retryAfter = Number.parseInt(res.headers.get("Retry-After") || "", 10);
    throw new ApiError(
      res.status,
      err.code || `http_${res.status}`,
      err.message || res.statusText,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : 0,
    );
  }
  return data;
}

const seg = encodeURIComponent;

export const api = {
  me: () => request("GET", "/api/me"),
  register: (name, password) => request("POST", "/api/users", { name, password }),
  login: (name, password) => request("POST", "/api/sessions", { name, password }),
  logout: () => request("DELETE", "/api/sessions"),
  /** A fresh token and cookie for the same session, valid for the full lifetime again. */
  refresh: () => request("POST", "/api/sessions/refresh", {}), // a JSON body: login CSRF rule
  /**
   * A page of the room list: {rooms, next}. The first page (no `after`) holds every room
   * I am in, then public rooms by name; pass `next` as `after` for more public rooms.
   */
  rooms({ after } = {}) {
    return request("GET", after ? `/api/rooms?after=${seg(after)}` : "/api/rooms");
  },
  createRoom: (name, isPrivate) => request("POST", "/api/rooms", { name, private: isPrivate }),
  /** A page of history, oldest first: {messages, head_seq, epoch}. */
  history(room, { before, after, limit } = {}) {
    const q = new URLSearchParams();
    if (before !== undefined) q.set("before", String(before));
    if (after !== undefined) q.set("after", String(after));
    if (limit !== undefined) q.set("limit", String(limit));
    const qs = q.toString();
    return request("GET", `/api/rooms/${seg(room)}/messages${qs ? `?${qs}` : ""}`);
  },
  /** Messages I can see whose text holds every word of `q`, newest first: {results, next}. */
  search(q, { room, before, limit } = {}) {
    const p = new URLSearchParams({ q });
    if (room) p.set("room", room);
    if (before) p.set("before", before);
    if (limit) p.set("limit", String(limit));
    return request("GET", `/api/search?${p}`);
  },
  /** {name, state, text, last_seen} */
  user: (name) => request("GET", `/api/users/${seg(name)}`),
  /** {members, owner}: `owner` manages a private room's members (null elsewhere). */
  members: (room) => request("GET", `/api/rooms/${seg(room)}/members`),
  addMember: (room, user) => request("POST", `/api/rooms/${seg(room)}/members`, { user }),
  /** The owner's actions on a private room: {members, owner} · the room object with `owner`. */
  removeMember: (room, user) => request("DELETE", `/api/rooms/${seg(room)}/members/${seg(user)}`),
  handOver: (room, user) => request("POST", `/api/rooms/${seg(room)}/owner`, { name: user }),
  openDm: (user) => request("POST", "/api/dms", { user }),
  /** Every other session of mine ends; this one stays. */
  changePassword: (old, next) => request("PUT", "/api/me/password", { old, new: next }),
  deleteAccount: (password) => request("DELETE", "/api/me", { password }),
  /** The /reset page: a one-time token from an admin's link and the new password. */
  resetPassword: (token, password) => request("POST", "/api/password-reset", { token, password }),
};
