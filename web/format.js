/**
 * Message text to DOM nodes: clickable links, `inline code`, ``` code blocks ``` and line
 * breaks. Never HTML from the text: every piece of user text becomes a text node, and the
 * only elements made are <a>, <code> and <pre> with attributes this module sets itself.
 */

const FENCE = "```";
/** http(s) links; a trailing sentence mark or closing bracket stays outside the link. */
const LINK_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
const TRAILING_RE = /[.,;:!?'")\]}]+$/;

/** A safe <a>: only http(s) URLs the URL parser accepts, opening a new tab without opener. */
function linkNode(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return document.createTextNode(raw);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return document.createTextNode(raw);
  const a = document.createElement("a");
  a.href = url.href;
  a.target = "_blank";
  a.rel = "noopener noreferrer";
  a.textContent = raw;
  return a;
}

/** Plain text with links (line breaks are kept by `white-space: pre-wrap`). */
function appendLinked(parent, text) {
  let last = 0;
  for (const match of text.matchAll(LINK_RE)) {
    let raw = match[0];
    const trail = raw.match(TRAILING_RE);
    if (trail) raw = raw.slice(0, raw.length - trail[0].length);
    if (!raw.includes("://") || raw.endsWith("://")) continue;
    parent.append(text.slice(last, match.index), linkNode(raw));
    last = match.index + raw.length;
  }
  parent.append(text.slice(last));
}

/** Text with `inline code` spans (a lone backtick is just a backtick). */
function appendInline(parent, text) {
  const parts = text.split("`");
  if (parts.length < 3) {
    appendLinked(parent, text);
    return;
  }
  // An odd count of backticks leaves the last one unpaired: it stays literal.
  const paired = parts.length % 2 === 1 ? parts : [...parts.slice(0, -2), `${parts.at(-2)}\`${parts.at(-1)}`];
  paired.forEach((part, i) => {
    if (i % 2 === 0) appendLinked(parent, part);
    else if (part === "") parent.append("``");
    else {
      const code = document.createElement("code");
      code.textContent = part;
      parent.append(code);
    }
  });
}

/** Fill `parent` with the rendered message text. */
export function renderText(parent, text) {
  const parts = String(text).split(FENCE);
  // Blocks are between pairs of fences; an unclosed fence is literal text.
  const closed = parts.length % 2 === 1 ? parts.length : parts.length - 1;
  for (let i = 0; i < parts.length; i += 1) {
    if (i % 2 === 1 && i < closed) {
      const pre = document.createElement("pre");
      const code = document.createElement("code");
      // ```lang\n…``` or ```\n…```: the first line break belongs to the fence.
      code.textContent = parts[i].replace(/^[A-Za-z0-9_+-]*\n/, "").replace(/\n$/, "");
      pre.append(code);
      parent.append(pre);
    } else {
      let piece = i >= closed && i > 0 ? FENCE + parts[i] : parts[i];
      // The line break right after a closing fence is the block's own.
      if (i > 0 && i <= closed && i % 2 === 0) piece = piece.replace(/^\n/, "");
      // …and so is the one right before an opening fence.
      if (i + 1 < closed && i % 2 === 0) piece = piece.replace(/\n$/, "");
      appendInline(parent, piece);
    }
  }
  return parent;
}
