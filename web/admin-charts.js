/**
 * The admin page's live charts: online users, messages/s and p99 delivery latency over the
 * last hour, from GET /api/admin/stats (the server samples every ~10 s, per node), drawn as
 * inline SVG (no library, no build step) and refreshed every REFRESH_MS.
 */

import { admin } from "./admin-api.js";
import { el } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";
export const REFRESH_MS = 10_000;
const WINDOW_MS = 60 * 60_000;
/** A young server (or node) has less than an hour of samples: draw what there is across the
 * chart, but never squeeze less than this into it. */
const MIN_WINDOW_MS = 60_000;
/** The drawing's own coordinates; CSS scales the SVG to its card. */
const W = 300;
const H = 80;
const PAD = 2;

export const CHARTS = [
  { key: "online_users", title: "Online users", unit: "", digits: 0 },
  { key: "messages_per_s", title: "Messages / s", unit: "", digits: 1 },
  { key: "p99_delivery_ms", title: "p99 delivery", unit: " ms", digits: 1 },
];

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

function fmt(value, digits) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  const n = Number(value);
  return n.toLocaleString("en-US", { maximumFractionDigits: n >= 100 ? 0 : digits });
}

/** How much time the chart spans: the hour, or since the first sample if that is later. */
export function span(points, now) {
  const first = points.length ? points[0][0] : now;
  return Math.min(WINDOW_MS, Math.max(MIN_WINDOW_MS, now - first));
}

/**
 * The points of one series as SVG coordinates: x spans `span()` ending at `now`, y runs
 * from 0 to a little above the series' maximum (at least 1, so a flat zero sits on the floor).
 */
export function project(points, now, width = W, height = H) {
  const windowMs = span(points, now);
  const usable = points.filter(([ts, v]) => Number.isFinite(ts) && Number.isFinite(v) && ts >= now - windowMs);
  const max = Math.max(1, ...usable.map(([, v]) => v)) * 1.1;
  const x = (ts) => PAD + ((ts - (now - windowMs)) / windowMs) * (width - 2 * PAD);
  const y = (v) => height - PAD - (v / max) * (height - 2 * PAD);
  return { max, coords: usable.map(([ts, v]) => [x(ts), y(v)]) };
}

function spanText(ms) {
  return ms >= WINDOW_MS ? "last hour" : `last ${Math.round(ms / 60_000)} min`;
}

/** Redraw one chart's <svg> with `points` ([[ts_ms, value], …]). */
export function draw(node, points, now) {
  const { coords } = project(points, now);
  node.replaceChildren();
  for (const frac of [0.25, 0.5, 0.75]) {
    node.append(svg("line", { class: "gridline", x1: 0, x2: W, y1: H * frac, y2: H * frac }));
  }
  if (!coords.length) return;
  const line = coords.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const [x0] = coords[0];
  const [x1] = coords[coords.length - 1];
  node.append(svg("path", { class: "area", d: `M${x0.toFixed(1)},${H} L${line.replaceAll(" ", " L")} L${x1.toFixed(1)},${H} Z` }));
  node.append(svg("polyline", { class: "line", points: line }));
  const [lx, ly] = coords[coords.length - 1];
  node.append(svg("circle", { class: "dot", cx: lx.toFixed(1), cy: ly.toFixed(1), r: 3 }));
}

/** The three chart cards inside `root`; start() polls the stats until stop(). */
export class Charts {
  constructor(root, notice) {
    this.notice = notice;
    this.timer = null;
    this.cards = CHARTS.map((chart) => {
      const value = el("span", { class: "chart-now" }, "—");
      const peak = el("span", { class: "chart-peak" });
      const spanLabel = el("span", {}, "last hour");
      const drawing = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", role: "img" });
      drawing.classList.add("chart-svg");
      const title = svg("title");
      drawing.append(title);
      const card = el(
        "figure",
        { class: "chart", dataset: { chart: chart.key } },
        el("figcaption", {}, el("span", { class: "chart-title" }, chart.title), value),
        drawing,
        el("div", { class: "chart-foot" }, spanLabel, peak),
      );
      root.append(card);
      return { chart, value, peak, drawing, title, spanLabel };
    });
  }

  render(stats, now = Date.now()) {
    for (const card of this.cards) {
      const { key, title, unit, digits } = card.chart;
      const points = (stats.series && stats.series[key]) || [];
      const current = stats.now ? stats.now[key] : undefined;
      card.value.textContent = `${fmt(current, digits)}${current === undefined || current === null ? "" : unit}`;
      const peak = points.length ? Math.max(...points.map(([, v]) => v)) : null;
      card.peak.textContent = peak === null ? "" : `peak ${fmt(peak, digits)}${unit}`;
      draw(card.drawing, points, now);
      card.spanLabel.textContent = spanText(span(points, now));
      card.drawing.prepend(card.title);
      card.title.textContent = `${title}: ${fmt(current, digits)}${unit} now, ${points.length} samples over the ${spanText(span(points, now))}`;
      card.drawing.dataset.samples = String(points.length);
    }
  }

  async refresh() {
    try {
      this.render(await admin.stats());
    } catch (err) {
      this.notice.error(err);
    }
  }

  start() {
    this.refresh();
    this.timer = setInterval(() => {
      if (!document.hidden) this.refresh();
    }, REFRESH_MS);
  }

  stop() {
    clearInterval(this.timer);
  }
}
