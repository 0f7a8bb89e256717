/** The composer (Enter sends, Shift+Enter is a newline, typing notices) and the scroll area. */

/**
 * Send `typing` at most this often while someone types. The server drops (and counts as a
 * rate-limit strike) a second `typing` within 2 s on one connection; the margin absorbs jitter.
 */
const TYPING_SEND_INTERVAL_MS = 2_500;
/** Start loading older history when the reader is this close to the top. */
const LOAD_OLDER_PX = 200;
/** The composer grows with its text up to this height, then scrolls. */
const COMPOSER_MAX_PX = 200;
/** The longest message the server takes (NOCHAT_MAX_TEXT_CHARS' default, in code points). */
export const MAX_TEXT_CHARS = 4000;
/** The counter shows from this many characters on, so nobody meets the limit by surprise. */
const COUNT_FROM_CHARS = 3_600;

const $ = (id) => document.getElementById(id);

/** Characters as the server counts them (code points, so an emoji is one). */
export function countChars(text) {
  let n = 0;
  for (const _ of text) n += 1;
  return n;
}

/**
 * The counter near (and over) the limit, e.g. "4,870 / 4,000", and the Send button off
 * while over: a long paste is never cut silently (no `maxlength`), and never sent.
 */
function showCount(input) {
  const n = countChars(input.value);
  const over = n > MAX_TEXT_CHARS;
  const counter = $("message-count");
  counter.hidden = n < COUNT_FROM_CHARS;
  counter.textContent = `${n.toLocaleString("en-US")} / ${MAX_TEXT_CHARS.toLocaleString("en-US")}`;
  counter.classList.toggle("over", over);
  counter.title = over ? `${(n - MAX_TEXT_CHARS).toLocaleString("en-US")} characters too many` : "";
  input.setAttribute("aria-invalid", String(over));
  $("composer").querySelector("button[type=submit]").disabled = over;
}

export function bindComposer(chat, signal) {
  const input = $("message");
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, COMPOSER_MAX_PX)}px`;
    showCount(input);
  };
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    chat.submit();
    autosize();
  }, { signal });
  input.addEventListener("keydown", (e) => {
    if (e.isComposing) return;
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      chat.submit();
      autosize();
    } else if (e.key === "ArrowUp" && input.value === "" && chat.actions.editLast()) {
      e.preventDefault(); // Up in an empty composer edits my last message
    } else if (e.key === "Escape" && chat.actions.cancel()) {
      e.preventDefault();
    }
  }, { signal });
  // Throttled `typing`: the first keystroke after a quiet interval sends at once; keystrokes
  // inside the interval send one deferred notice when it ends, unless the text was sent.
  let deferred = null;
  const notifyTyping = () => {
    const now = Date.now();
    if (!input.value.trim() || !chat.active) return;
    const wait = chat.lastTypingSent + TYPING_SEND_INTERVAL_MS - now;
    if (wait > 0) {
      deferred ??= setTimeout(() => {
        deferred = null;
        notifyTyping();
      }, wait);
      return;
    }
    chat.lastTypingSent = now;
    chat.socket.typing(chat.active);
  };
  signal.addEventListener("abort", () => clearTimeout(deferred));
  input.addEventListener("input", () => {
    autosize();
    $("composer-error").textContent = "";
    notifyTyping();
  }, { signal });
  const scroller = $("scroller");
  scroller.addEventListener("scroll", () => {
    if (scroller.scrollTop < LOAD_OLDER_PX) chat.loadOlder();
    if (chat.list.nearBottom()) {
      $("jump").hidden = true;
      chat.markRead();
    }
  }, { signal, passive: true });
  $("load-older").addEventListener("click", () => chat.loadOlder(), { signal });
  $("jump").addEventListener("click", () => {
    chat.list.scrollToBottom();
    $("jump").hidden = true;
    input.focus();
  }, { signal });
  document.addEventListener("visibilitychange", () => chat.markRead(), { signal });
}
