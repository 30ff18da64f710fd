/**
 * Shared plumbing of the experiments behind docs/results.md: what an experiment returns, and
 * small helpers for markdown tables and for reading a run's history.
 */
import type { MetricPoint, SimulationResult } from '../simulator.ts';

export interface ExperimentContext {
  /** Smoke run: fewer runs and iterations (numbers are not meant to be read). */
  quick: boolean;
  log: (message: string) => void;
}

export interface Plot {
  /** File name under docs/results/. */
  file: string;
  svg: string;
}

export interface ExperimentOutput {
  /** Markdown of the section, without its top heading. */
  markdown: string;
  plots: Plot[];
}

export interface Experiment {
  id: string;
  title: string;
  run(ctx: ExperimentContext): ExperimentOutput;
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = header.map((_, i) =>
    rows.every((r) => /^[-+]?[\d.,]+(?:e[-+]?\d+)?[%×]?$|^—$|^n\/a$/.test(r[i] ?? ''))
      ? '---:'
      : '---',
  );
  const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(align), ...rows.map(line)].join('\n');
}

export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${(100 * x).toFixed(digits)}%` : '—';
}

export function num(x: number, digits = 2): string {
  if (!Number.isFinite(x)) return '—';
  return x.toFixed(digits);
}

export function bytes(b: number): string {
  if (!Number.isFinite(b)) return '—';
  if (b >= 1e9) return `${(b / 1e9).toFixed(2)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${b} B`;
}

/** A claim's verdict as the tables print it, from a condition computed on the numbers. */
export function verdict(holds: boolean): string {
  return holds ? '**reproduced**' : '**not reproduced**';
}

/**
 * Seed 000's majority condition against crash runs (one per number of crashed clusters):
 * `goesOn` — no run with a majority of clusters live stalled; `stallsWithout` — at least one run
 * had no majority, and every such run stalled.
 */
export function majorityCondition(
  runs: readonly { crashed: number; stalled: boolean }[],
  clusters: number,
): { goesOn: boolean; stallsWithout: boolean } {
  const majority = Math.floor(clusters / 2) + 1;
  const withMajority = runs.filter((r) => clusters - r.crashed >= majority);
  const without = runs.filter((r) => clusters - r.crashed < majority);
  return {
    goesOn: withMajority.length > 0 && withMajority.every((r) => !r.stalled),
    stallsWithout: without.length > 0 && without.every((r) => r.stalled),
  };
}

export function ratio(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : '—';
}

/** First evaluation with accuracy ≥ target (undefined if none). */
export function firstReaching(
  history: readonly MetricPoint[],
  target: number,
): MetricPoint | undefined {
  return history.find((p) => p.accuracy >= target);
}

/** Accuracy at a byte budget: the last evaluation whose bytes sent are ≤ budget. */
export function accuracyAtBytes(history: readonly MetricPoint[], budget: number): number {
  let acc = NaN;
  for (const p of history) if (p.bytesSent <= budget) acc = p.accuracy;
  return acc;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? NaN : values.reduce((a, b) => a + b, 0) / values.length;
}

/** One line about a run for the progress log. */
export function describeRun(label: string, r: SimulationResult): string {
  const f = r.final;
  return (
    `${label}: it=${f.iteration} t=${f.time.toFixed(1)}s acc=${Number.isNaN(f.accuracy) ? '—' : f.accuracy.toFixed(3)} ` +
    `loss=${f.loss.toPrecision(3)} ended=${r.ended} wall=${(r.wallMs / 1000).toFixed(1)}s`
  );
}
