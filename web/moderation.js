/** What the chat tells a person whom moderation touched: ban and disconnect closes, refused sends. */

/** Close codes (docs/PROTOCOL.md "Admin API"). */
export const BANNED = 4003;
export const DISCONNECTED_BY_ADMIN = 4004;

const timeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** Why the chat closed, for the sign-in form, from the socket's close code. */
export function signedOutText(code) {
  if (code === BANNED) return "You have been banned from this server.";
  return "Your session has ended. Please log in again.";
}

/** The text a refused send shows: who may not send, and until when. */
export function sendFailureText(error) {
  if (error.code === "muted") {
    return error.until ? `You are muted until ${timeFmt.format(new Date(error.until))}.` : "You are muted.";
  }
  if (error.code === "archived") return "This room is archived: it takes no new messages.";
  return error.message || error.code;
}

/** A deleted message's tombstone (message.js): by its author, or removed by a moderator. */
export function deletedText(msg) {
  return msg.by === "moderator" ? "This message was removed by a moderator." : "This message was deleted.";
}
