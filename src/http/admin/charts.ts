import { html, type SafeHtml } from './html.js';

/**
 * Small bar charts drawn on the server as inline SVG: no script, no style
 * attribute, no other origin, so they render offline and under the admin
 * UI's CSP. Colours and type come from classes in the stylesheet
 * (assets.ts); sizes are SVG attributes. Every chart has its figures in its
 * accessible name, and each bar a tooltip (<title>).
 */

export interface ChartBar {
  /** Start of the bar's period (epoch ms). */
  start: number;
  /** The bar's height; null: nothing to show for this period. */
  value: number | null;
  /** A mark drawn above the bar (the largest latency over the median). */
  mark?: number | null;
}

export interface ChartOptions {
  /** Unique on the page; ids are derived from it. */
  id: string;
  /** What the chart shows, e.g. "Messages received". */
  label: string;
  bars: ChartBar[];
  /** Length of one period (ms), for the tooltips. */
  periodMs: number;
  /** The bar's class in the stylesheet (its colour). */
  tone: 'received' | 'acknowledged' | 'failed' | 'latency';
  /** How a value is written (axis, tooltips); counts by default. */
  format?: (v: number) => string;
  /** The accessible summary of the chart (its name for screen readers and the tooltip). */
  summary: string;
  /** What a bar's mark means, for its tooltip ("longest"). */
  markLabel?: string;
}

const W = 320;
const H = 132;
const LEFT = 44;
const RIGHT = 6;
const TOP = 8;
const BOTTOM = 20;

/** The smallest 1, 2 or 5 × 10^k at or above v (the axis top); 1 for nothing. */
export function niceCeil(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** "14:00" (UTC): bucket starts are whole hours. */
export function hourLabel(t: number): string {
  return new Date(t).toISOString().slice(11, 16);
}

/** "14:00–15:00 UTC". */
export function periodLabel(start: number, periodMs: number): string {
  return `${hourLabel(start)}–${hourLabel(start + periodMs)} UTC`;
}

/** A latency as an admin reads it: "850 ms", "1.2 s", "14 s", "3 min", "2.5 h". */
export function latency(ms: number): string {
  const one = (v: number) => (v < 10 ? String(Math.round(v * 10) / 10) : String(Math.round(v)));
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${one(ms / 1_000)} s`;
  if (ms < 3_600_000) return `${one(ms / 60_000)} min`;
  return `${one(ms / 3_600_000)} h`;
}

const count = (v: number) => String(v);

export function barChart(o: ChartOptions): SafeHtml {
  const fmt = o.format ?? count;
  const top = niceCeil(Math.max(0, ...o.bars.map((b) => Math.max(b.value ?? 0, b.mark ?? 0))));
  const plotW = W - LEFT - RIGHT;
  const plotH = H - TOP - BOTTOM;
  const slot = plotW / Math.max(1, o.bars.length);
  const y = (v: number) => TOP + plotH - (v / top) * plotH;
  const bars = o.bars.map((b, i) => {
    const x = LEFT + i * slot;
    const tip = `${periodLabel(b.start, o.periodMs)}: ${b.value === null ? 'none' : fmt(b.value)}${
      b.mark !== undefined && b.mark !== null && o.markLabel ? `, ${o.markLabel} ${fmt(b.mark)}` : ''
    }`;
    const h = b.value === null ? 0 : Math.max(b.value > 0 ? 1 : 0, (b.value / top) * plotH);
    const mark =
      b.mark !== undefined && b.mark !== null
        ? html`<line class="mark" x1="${fixed2(x + 1)}" x2="${fixed2(x + slot - 1)}" y1="${fixed2(y(b.mark))}" y2="${fixed2(y(b.mark))}" stroke-width="2"/>`
        : null;
    // A full-height transparent slot carries the tooltip, so an empty hour can be pointed at too.
    return html`<g><title>${tip}</title><rect class="slot" x="${fixed2(x)}" y="${TOP}" width="${fixed2(slot)}" height="${plotH}" fill="transparent"/>${
      h > 0 ? html`<rect class="bar ${o.tone}" x="${fixed2(x + 1)}" y="${fixed2(TOP + plotH - h)}" width="${fixed2(Math.max(1, slot - 2))}" height="${fixed2(h)}"/>` : null
    }${mark}</g>`;
  });
  const ticks = o.bars
    .map((b, i) => ({ b, i }))
    .filter(({ b }) => new Date(b.start).getUTCHours() % 6 === 0)
    .map(({ b, i }) => html`<text class="tick" x="${fixed2(LEFT + i * slot)}" y="${H - 6}">${hourLabel(b.start)}</text>`);
  return html`<figure class="chart" id="chart-${o.id}">
<figcaption>${o.label}</figcaption>
<svg role="img" aria-label="${o.summary}" viewBox="0 0 ${W} ${H}" width="100%" preserveAspectRatio="xMidYMid meet" focusable="false">
<title>${o.summary}</title>
<line class="axis" x1="${LEFT}" x2="${W - RIGHT}" y1="${TOP + plotH}" y2="${TOP + plotH}"/>
<line class="grid" x1="${LEFT}" x2="${W - RIGHT}" y1="${TOP}" y2="${TOP}"/>
<text class="tick end" x="${LEFT - 4}" y="${TOP + 4}" text-anchor="end">${fmt(top)}</text>
<text class="tick end" x="${LEFT - 4}" y="${TOP + plotH}" text-anchor="end">${fmt(0)}</text>
${bars}
${ticks}
</svg>
</figure>`;
}

function fixed2(v: number): string {
  return (Math.round(v * 100) / 100).toString();
}
