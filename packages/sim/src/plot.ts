/**
 * A small hand-written SVG chart writer for docs/results (presentation, no algorithm): line
 * charts (optional log axes), grouped bar charts and heat maps with an optional boundary line.
 * Output is a self-contained SVG string with a white background, readable on GitHub.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  dashed?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logX?: boolean;
  logY?: boolean;
  yMin?: number;
  yMax?: number;
  xMin?: number;
  xMax?: number;
  /** Horizontal reference lines (e.g. a target accuracy). */
  hLines?: readonly { y: number; label: string }[];
  /** Vertical reference lines. */
  vLines?: readonly { x: number; label: string }[];
  width?: number;
  height?: number;
}

const PALETTE = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#ff7f0e',
  '#9467bd',
  '#8c564b',
  '#e377c2',
  '#7f7f7f',
  '#bcbd22',
  '#17becf',
];

export function color(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) {
    const e = Math.floor(Math.log10(a));
    const m = v / 10 ** e;
    return `${Math.abs(m - 1) < 1e-9 ? '' : `${+m.toFixed(1)}·`}1e${e}`;
  }
  if (a >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  return `${+v.toPrecision(3)}`;
}

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push(Math.abs(t) < step * 1e-9 ? 0 : t);
  }
  return ticks;
}

function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    const t = 10 ** e;
    if (t >= lo * 0.999 && t <= hi * 1.001) ticks.push(t);
  }
  if (ticks.length < 2) {
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const k of [2, 5]) {
        const t = k * 10 ** e;
        if (t >= lo && t <= hi) ticks.push(t);
      }
    }
    ticks.sort((a, b) => a - b);
  }
  return ticks;
}

class Axis {
  constructor(
    readonly lo: number,
    readonly hi: number,
    readonly log: boolean,
    readonly from: number,
    readonly to: number,
  ) {}
  map(v: number): number {
    const f = this.log
      ? (Math.log(v) - Math.log(this.lo)) / (Math.log(this.hi) - Math.log(this.lo))
      : (v - this.lo) / (this.hi - this.lo || 1);
    return this.from + f * (this.to - this.from);
  }
  ticks(): number[] {
    return this.log ? logTicks(this.lo, this.hi) : niceTicks(this.lo, this.hi);
  }
}

function extent(values: number[], log: boolean, min?: number, max?: number): [number, number] {
  const ok = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = min ?? (ok.length ? Math.min(...ok) : 0);
  let hi = max ?? (ok.length ? Math.max(...ok) : 1);
  if (lo === hi) {
    lo = log ? lo / 2 : lo - 1;
    hi = log ? hi * 2 : hi + 1;
  }
  if (!log && min === undefined && max === undefined) {
    const pad = (hi - lo) * 0.04;
    lo -= pad;
    hi += pad;
  }
  return [lo, hi];
}

function frame(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 420;
  const legendW = 200;
  const left = 70;
  const right = width - legendW - 10;
  const top = 36;
  const bottom = height - 50;
  const xs = o.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = o.series.flatMap((s) => s.points.map((p) => p[1]));
  for (const h of o.hLines ?? []) ys.push(h.y);
  const [x0, x1] = extent(xs, o.logX === true, o.xMin, o.xMax);
  const [y0, y1] = extent(ys, o.logY === true, o.yMin, o.yMax);
  const X = new Axis(x0, x1, o.logX === true, left, right);
  const Y = new Axis(y0, y1, o.logY === true, bottom, top);
  const body: string[] = [];
  body.push(
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333"/>`,
  );
  for (const t of X.ticks()) {
    const x = X.map(t);
    body.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#eee"/>`,
      `<text x="${x}" y="${bottom + 16}" text-anchor="middle">${fmt(t)}</text>`,
    );
  }
  for (const t of Y.ticks()) {
    const y = Y.map(t);
    body.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  body.push(
    `<text x="${(left + right) / 2}" y="${height - 12}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(16 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  const clip = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  for (const h of o.hLines ?? []) {
    const y = Y.map(h.y);
    body.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#555" stroke-dasharray="6 4"/>`,
      `<text x="${right - 4}" y="${y - 4}" text-anchor="end" fill="#555">${esc(h.label)}</text>`,
    );
  }
  for (const v of o.vLines ?? []) {
    const x = X.map(v.x);
    body.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="#555" stroke-dasharray="6 4"/>`,
      `<text x="${x + 4}" y="${top + 14}" fill="#555">${esc(v.label)}</text>`,
    );
  }
  o.series.forEach((s, i) => {
    const pts = s.points
      .filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]))
      .filter((p) => (!o.logX || p[0] > 0) && (!o.logY || p[1] > 0))
      .map((p) => `${X.map(p[0]).toFixed(1)},${clip(Y.map(p[1]), top, bottom).toFixed(1)}`);
    if (pts.length === 0) return;
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    body.push(
      `<polyline fill="none" stroke="${color(i)}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`,
    );
    if (pts.length <= 30) {
      for (const p of pts) {
        const [x, y] = p.split(',');
        body.push(`<circle cx="${x}" cy="${y}" r="2.5" fill="${color(i)}"/>`);
      }
    }
    const ly = top + 8 + i * 18;
    body.push(
      `<line x1="${right + 14}" y1="${ly}" x2="${right + 36}" y2="${ly}" stroke="${color(i)}" stroke-width="3"${dash}/>`,
      `<text x="${right + 42}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  return frame(width, height, o.title, body);
}

export interface BarChartOptions {
  title: string;
  yLabel: string;
  categories: readonly string[];
  groups: readonly { name: string; values: readonly number[] }[];
  yMin?: number;
  yMax?: number;
  hLines?: readonly { y: number; label: string }[];
  width?: number;
  height?: number;
}

export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 420;
  const legendW = 200;
  const left = 70;
  const right = width - legendW - 10;
  const top = 36;
  const bottom = height - 70;
  const values = o.groups.flatMap((g) => [...g.values]);
  for (const h of o.hLines ?? []) values.push(h.y);
  const [y0, y1] = extent([0, ...values], false, o.yMin ?? 0, o.yMax);
  const Y = new Axis(y0, y1, false, bottom, top);
  const body: string[] = [
    `<rect x="${left}" y="${top}" width="${right - left}" height="${bottom - top}" fill="none" stroke="#333"/>`,
  ];
  for (const t of Y.ticks()) {
    const y = Y.map(t);
    body.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#eee"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${fmt(t)}</text>`,
    );
  }
  const slot = (right - left) / Math.max(1, o.categories.length);
  const barW = (slot * 0.8) / Math.max(1, o.groups.length);
  o.categories.forEach((cat, ci) => {
    const cx = left + slot * (ci + 0.5);
    body.push(
      `<text transform="translate(${cx} ${bottom + 14}) rotate(20)" text-anchor="start" font-size="11">${esc(cat)}</text>`,
    );
    o.groups.forEach((g, gi) => {
      const v = g.values[ci];
      if (v === undefined || !Number.isFinite(v)) return;
      const x = left + slot * ci + slot * 0.1 + gi * barW;
      const y = Y.map(Math.min(Math.max(v, y0), y1));
      body.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW - 1).toFixed(1)}" height="${(bottom - y).toFixed(1)}" fill="${color(gi)}"/>`,
      );
    });
  });
  for (const h of o.hLines ?? []) {
    const y = Y.map(h.y);
    body.push(
      `<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="#555" stroke-dasharray="6 4"/>`,
      `<text x="${right - 4}" y="${y - 4}" text-anchor="end" fill="#555">${esc(h.label)}</text>`,
    );
  }
  o.groups.forEach((g, gi) => {
    const ly = top + 8 + gi * 18;
    body.push(
      `<rect x="${right + 14}" y="${ly - 6}" width="22" height="12" fill="${color(gi)}"/>`,
      `<text x="${right + 42}" y="${ly + 4}">${esc(g.name)}</text>`,
    );
  });
  body.push(
    `<text transform="translate(16 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  return frame(width, height, o.title, body);
}

export interface HeatmapOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  xLabels: readonly string[];
  yLabels: readonly string[];
  /** values[row][col], row = y index (drawn bottom-up), col = x index; NaN = empty cell. */
  values: readonly (readonly number[])[];
  /** Cell text; default the value with 2 significant digits. */
  label?: (v: number, row: number, col: number) => string;
  /** Maps a value to [0, 1] for the colour (0 = good/green, 1 = bad/red). */
  badness: (v: number) => number;
  /** A boundary drawn over the cells: per column, the row edge (fractional row index + 0.5). */
  boundary?: { name: string; edges: readonly (number | undefined)[] };
  legend?: string;
  width?: number;
  height?: number;
}

function heat(t: number): string {
  const u = Math.min(1, Math.max(0, t));
  // green (good) → yellow → red (bad)
  const r = Math.round(u < 0.5 ? 80 + 350 * u : 255);
  const g = Math.round(u < 0.5 ? 190 : 190 - 300 * (u - 0.5));
  const b = Math.round(90 - 60 * u);
  return `rgb(${r},${Math.max(0, g)},${b})`;
}

export function heatmap(o: HeatmapOptions): string {
  const width = o.width ?? 760;
  const height = o.height ?? 440;
  const longest = Math.max(0, ...o.yLabels.map((l) => l.length));
  const left = Math.max(80, Math.ceil(20 + 6.8 * longest));
  const right = width - 20;
  const top = 40;
  const bottom = height - (o.legend !== undefined ? 70 : 50);
  const cols = o.xLabels.length;
  const rows = o.yLabels.length;
  const cw = (right - left) / Math.max(1, cols);
  const ch = (bottom - top) / Math.max(1, rows);
  const body: string[] = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = o.values[r]?.[c] ?? NaN;
      const x = left + c * cw;
      const y = bottom - (r + 1) * ch;
      const fill = Number.isNaN(v) ? '#f4f4f4' : heat(o.badness(v));
      body.push(
        `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${cw.toFixed(1)}" height="${ch.toFixed(1)}" fill="${fill}" stroke="white"/>`,
      );
      if (!Number.isNaN(v)) {
        const text = o.label ? o.label(v, r, c) : fmt(v);
        body.push(
          `<text x="${(x + cw / 2).toFixed(1)}" y="${(y + ch / 2 + 4).toFixed(1)}" text-anchor="middle" font-size="10">${esc(text)}</text>`,
        );
      }
    }
  }
  o.xLabels.forEach((l, c) =>
    body.push(
      `<text x="${(left + (c + 0.5) * cw).toFixed(1)}" y="${bottom + 16}" text-anchor="middle">${esc(l)}</text>`,
    ),
  );
  o.yLabels.forEach((l, r) =>
    body.push(
      `<text x="${left - 6}" y="${(bottom - (r + 0.5) * ch + 4).toFixed(1)}" text-anchor="end">${esc(l)}</text>`,
    ),
  );
  body.push(
    `<text x="${(left + right) / 2}" y="${bottom + 36}" text-anchor="middle">${esc(o.xLabel)}</text>`,
    `<text transform="translate(16 ${(top + bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`,
  );
  if (o.boundary !== undefined) {
    const pts: string[] = [];
    o.boundary.edges.forEach((e, c) => {
      if (e === undefined) return;
      const y = bottom - e * ch;
      pts.push(`${(left + c * cw).toFixed(1)},${y.toFixed(1)}`);
      pts.push(`${(left + (c + 1) * cw).toFixed(1)},${y.toFixed(1)}`);
    });
    if (pts.length > 0) {
      body.push(
        `<polyline fill="none" stroke="#000" stroke-width="3" stroke-dasharray="8 4" points="${pts.join(' ')}"/>`,
      );
    }
  }
  if (o.legend !== undefined) {
    body.push(`<text x="${left}" y="${height - 12}" font-size="11">${esc(o.legend)}</text>`);
  }
  return frame(width, height, o.title, body);
}
