/**
 * Files: the upload tray (attach button, drag and drop, paste; a progress bar, cancel and
 * retry per upload) and how attachments show in a message (thumbnails, file cards).
 * Uploads go over XMLHttpRequest for its upload progress events; the composer stays free.
 */

import { el } from "./view.js";

const seg = encodeURIComponent;
/** Types the server shows inline as pictures (it sniffs them; see docs/PROTOCOL.md). */
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);
/** Files one message may carry (the server's limit). */
export const MAX_ATTACHMENTS = 10;

const REASONS = {
  too_large: "too large",
  quota_exceeded: "over your storage quota",
  network: "network error",
  not_found: "you cannot post files here",
};

const SVG_NS = "http://www.w3.org/2000/svg";
/** Icons drawn inline (no icon or emoji font needed): a document, and a paper clip. */
const DOC_PATH = "M4 1.5h5.5L13 5v9.5H4zM9 1.5V5.5h4M6 8.5h5M6 11h5";
const CLIP_PATH = "M10.5 4.5 5.6 9.4a1.5 1.5 0 0 0 2.1 2.1l5.3-5.3a3 3 0 0 0-4.2-4.2L3.4 7.4a4.5 4.5 0 0 0 6.4 6.4l4.2-4.2";

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

/** One file on its way up. */
class Upload {
  constructor(tray, room, file) {
    this.tray = tray;
    this.room = room;
    this.file = file;
    this.name = file.name || "pasted-image.png";
    this.state = "uploading";
    this.record = null;
    this.bar = el("progress", { max: "100", value: "0", "aria-label": `Uploading ${this.name}` });
    this.note = el("span", { class: "upload-note" });
    this.action = el("button", { type: "button", class: "ghost small", onclick: () => this.act() });
    this.node = el(
      "li",
      { class: "upload" },
      el("span", { class: "upload-name" }, this.name),
      el("span", { class: "file-size" }, formatSize(file.size)),
      this.bar,
      this.note,
      this.action,
    );
  }

  start() {
    this.state = "uploading";
    this.node.dataset.state = "uploading";
    this.note.textContent = "";
    this.action.textContent = "Cancel";
    this.bar.hidden = false;
    this.bar.value = 0;
    const xhr = new XMLHttpRequest();
    this.xhr = xhr;
    xhr.open("POST", `/api/rooms/${seg(this.room)}/files?filename=${seg(this.name)}`);
    xhr.setRequestHeader("Content-Type", this.file.type || "application/octet-stream");
    xhr.responseType = "json";
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable) this.bar.value = Math.round((e.loaded / e.total) * 100);
    };
    xhr.onload = () => {
      if (xhr.status === 201 && xhr.response) this.done(xhr.response);
      else this.failed((xhr.response && xhr.response.error && xhr.response.error.code) || `http_${xhr.status}`);
    };
    xhr.onerror = () => this.failed("network");
    xhr.onabort = () => this.tray.remove(this);
    xhr.send(this.file);
  }

  done(record) {
    this.state = "done";
    this.record = record;
    this.node.dataset.state = "done";
    this.bar.value = 100;
    this.note.textContent = "Ready";
    this.action.textContent = "Remove";
    this.tray.changed();
  }

  failed(code) {
    this.state = "failed";
    this.node.dataset.state = "failed";
    this.bar.hidden = true;
    this.note.textContent = `Failed: ${REASONS[code] || code}`;
    this.action.textContent = "Retry";
    this.tray.changed();
  }

  act() {
    if (this.state === "uploading") this.xhr.abort();
    else if (this.state === "failed") this.start();
    else this.tray.remove(this);
  }
}

/** The uploads of the composer, for the open room. */
export class UploadTray {
  constructor(list, onChange) {
    this.list = list;
    this.onChange = onChange;
    this.uploads = [];
  }

  add(room, files) {
    for (const file of files) {
      if (this.uploads.length >= MAX_ATTACHMENTS) break;
      const upload = new Upload(this, room, file);
      this.uploads.push(upload);
      this.list.append(upload.node);
      upload.start();
    }
    this.changed();
  }

  remove(upload) {
    this.uploads = this.uploads.filter((u) => u !== upload);
    upload.node.remove();
    this.changed();
  }

  changed() {
    this.list.hidden = this.uploads.length === 0;
    this.onChange();
  }

  /** The finished uploads of `room`, taken out of the tray for a message. */
  take(room) {
    const ready = this.uploads.filter((u) => u.state === "done" && u.room === room);
    for (const u of ready) this.remove(u);
    return ready.map((u) => u.record);
  }

  hasReady(room) {
    return this.uploads.some((u) => u.state === "done" && u.room === room);
  }
}

/** Attach button, drag and drop onto the conversation, pasted images. */
export function bindUploads(chat, tray, signal) {
  const picker = document.getElementById("file-input");
  const attach = document.getElementById("attach");
  if (!attach.querySelector("svg")) attach.prepend(svgIcon(CLIP_PATH, "clip")); // once per page
  const pick = () => chat.active && tray.add(chat.active, picker.files);
  attach.addEventListener("click", () => picker.click(), { signal });
  picker.addEventListener("change", () => {
    pick();
    picker.value = "";
  }, { signal });
  const zone = document.getElementById("room");
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  zone.addEventListener("dragover", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    zone.classList.add("dropping");
  }, { signal });
  zone.addEventListener("dragleave", (e) => {
    if (e.target === zone || !zone.contains(e.relatedTarget)) zone.classList.remove("dropping");
  }, { signal });
  zone.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    zone.classList.remove("dropping");
    if (chat.active) tray.add(chat.active, e.dataTransfer.files);
  }, { signal });
  document.getElementById("message").addEventListener("paste", (e) => {
    const files = [...(e.clipboardData ? e.clipboardData.files : [])];
    if (!files.length || !chat.active) return;
    e.preventDefault();
    tray.add(chat.active, files);
  }, { signal });
}
