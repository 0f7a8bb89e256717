/**
 * How a message's attachments look: images as thumbnails that open full size, other files
 * as cards with name, size and a download link. Names are text nodes, never markup.
 */

import { el } from "./dom.js";

const seg = encodeURIComponent;
/** Types the server shows inline as pictures (it sniffs them; see docs/PROTOCOL.md). */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

const SVG_NS = "http://www.w3.org/2000/svg";
/** Icons drawn inline (no icon or emoji font needed): a document, and a paper clip. */
const DOC_PATH = "M4 1.5h5.5L13 5v9.5H4zM9 1.5V5.5h4M6 8.5h5M6 11h5";
export const CLIP_PATH = "M10.5 4.5 5.6 9.4a1.5 1.5 0 0 0 2.1 2.1l5.3-5.3a3 3 0 0 0-4.2-4.2L3.4 7.4a4.5 4.5 0 0 0 6.4 6.4l4.2-4.2";

export function svgIcon(d, cls) {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "18");
  svg.setAttribute("height", "18");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "1.4");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

export function formatSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let n = bytes / 1024;
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

/** The attachments of a message: images as thumbnails that open full size, others as cards. */
export function attachmentsEl(attachments) {
  if (!attachments || !attachments.length) return null;
  return el(
    "div",
    { class: "attachments" },
    ...attachments.map((a) => {
      const href = `/api/files/${seg(a.id)}`;
      if (IMAGE_TYPES.has(a.content_type) && a.width) {
        const img = el("img", {
          src: `${href}/thumbnail`,
          alt: a.name,
          loading: "lazy",
          width: String(Math.min(a.width, 320)),
          height: String(Math.round(Math.min(a.width, 320) * (a.height / a.width))),
        });
        return el("a", { class: "thumb", href, target: "_blank", rel: "noopener", title: a.name }, img);
      }
      return el(
        "a",
        { class: "file-card", href, download: a.name, title: `Download ${a.name}` },
        svgIcon(DOC_PATH, "file-icon"),
        el("span", { class: "file-name" }, a.name),
        el("span", { class: "file-size" }, formatSize(a.size)),
      );
    }),
  );
}
