/** The composer (Enter sends, Shift+Enter is a newline, typing notices) and the scroll area. */

/** Send `typing` at most this often while someone types. */
const TYPING_SEND_INTERVAL_MS = 2_000;
/** Start loading older history when the reader is this close to the top. */
const LOAD_OLDER_PX = 200;
/** The composer grows with its text up to this height, then scrolls. */
const COMPOSER_MAX_PX = 200;

const $ = (id) => document.getElementById(id);

export function bindComposer(chat, signal) {
  const input = $("message");
  const autosize = () => {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, COMPOSER_MAX_PX)}px`;
  };
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    chat.submit();
    autosize();
  }, { signal });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      chat.submit();
      autosize();
    }
  }, { signal });
  input.addEventListener("input", () => {
    autosize();
    $("composer-error").textContent = "";
    const now = Date.now();
    if (input.value.trim() && chat.active && now - chat.lastTypingSent >= TYPING_SEND_INTERVAL_MS) {
      chat.lastTypingSent = now;
      chat.socket.typing(chat.active);
    }
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
