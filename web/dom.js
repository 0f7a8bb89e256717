/** Building DOM nodes. User text only ever reaches the page through text nodes (el() children). */

/** Build an element; string children become text nodes, never markup. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export const srOnly = (text) => el("span", { class: "sr-only" }, text);

/** A stable, readable colour per name (white text on it keeps ≥ 4.5:1 contrast). */
function hue(name) {
  let h = 0;
  for (const ch of String(name).toLowerCase()) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

export function avatar(name, extra = "") {
  const node = el("span", { class: `avatar ${extra}`, "aria-hidden": "true" }, String(name).slice(0, 1).toUpperCase());
  node.style.setProperty("--hue", String(hue(name))); // CSSOM: allowed by the CSP, unlike style=""
  return node;
}

