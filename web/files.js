/**
 * Uploads: the tray of the composer (attach button, drag and drop, paste; a progress bar,
 * cancel and retry per upload). Uploads go over XMLHttpRequest for its upload progress
 * events; the composer stays free. How attachments show in a message is attachments.js.
 */

import { CLIP_PATH, formatSize, svgIcon } from "./attachments.js";
import { el } from "./dom.js";

const seg = encodeURIComponent;
/** Files one message may carry (the server's limit). */
export const MAX_ATTACHMENTS = 10;

const REASONS = {
  too_large: "too large",
  quota_exceeded: "over your storage quota",
  network: "network error",
  not_found: "you cannot post files here",
};

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
