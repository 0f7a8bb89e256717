/**
 * Browser notifications for mentions: permission is asked for once (on the first click or key
 * in the page, as browsers want a gesture), and a notification is raised only while the tab
 * is hidden. Clicking it brings the tab forward at the message's room.
 */

const ASKED_KEY = "nochat.notifyAsked";

const supported = () => typeof Notification !== "undefined";

export class Notifier {
  constructor(onOpen, signal) {
    this.onOpen = onOpen;
    if (!supported() || Notification.permission !== "default" || localStorage.getItem(ASKED_KEY)) return;
    const ask = () => {
      document.removeEventListener("pointerdown", ask, true);
      document.removeEventListener("keydown", ask, true);
      localStorage.setItem(ASKED_KEY, "1");
      Notification.requestPermission().catch(() => {});
    };
    document.addEventListener("pointerdown", ask, { capture: true, signal });
    document.addEventListener("keydown", ask, { capture: true, signal });
  }

  /** `msg` in `room` mentions me: tell me, if I am not looking. */
  mentioned(room, msg) {
    if (!supported() || Notification.permission !== "granted" || !document.hidden) return;
    const where = room.dm ? "" : ` in #${room.name}`;
    const n = new Notification(`${msg.user} mentioned you${where}`, {
      body: String(msg.text || "").slice(0, 200),
      tag: `nochat:${room.name}:${msg.seq}`,
    });
    n.onclick = () => {
      window.focus();
      this.onOpen(room.name, msg.id);
      n.close();
    };
  }
}
