import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RejectReason } from '../src/aggregators/aggregator.ts';
import { coordinateMedianInto } from '../src/aggregators/coordinate-median.ts';
import type { QuarantineConfig, WindowReport } from '../src/quarantine.ts';
import { lagBoundary, Quarantine } from '../src/quarantine.ts';
import { createRng, gaussian } from '../src/random.ts';
import { allFinite, axpy, squaredDistance } from '../src/vector.ts';

/*
 * The quarantine before its per-iteration work was made cheaper (issue 16), as the reference
 * the optimised one must agree with: a coordinate median of the others per worker, unit
 * vectors copied every iteration, one pass over memory per dot product. Its comments are in
 * src/quarantine.ts; only the constructor's validation is left out.
 */

interface WorkerState {
  sum: Float32Array | null;
  count: number;
  hardFailures: number;
  filtered: number;
  strikes: number;
  cosines: number[];
  correlations: number[];
  /** Every window's alignment z, by window index. */
  alignmentZ: Map<number, number>;
  past: PastIteration[];
  lagEvidence: SeriesMean;
}

interface PastIteration {
  iteration: number;
  update: Float32Array;
  reference: Float32Array;
}

function mean(values: readonly number[]): number {
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

function meanAndError(values: readonly number[]): { mean: number; se: number } {
  const m = mean(values);
  if (values.length < 2) return { mean: m, se: 0 };
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return { mean: m, se: Math.sqrt(ss / (values.length - 1) / values.length) };
}

function boundsOf(lengths: readonly number[]): (readonly [number, number])[] {
  let from = 0;
  return lengths.map((n) => {
    const bounds = [from, from + n] as const;
    from += n;
    return bounds;
  });
}

const LAG_BANDWIDTH = 3;

class SeriesMean {
  count = 0;
  private sum = 0;
  private squares = 0;
  private readonly cross: number[];
  private readonly first: number[] = [];
  private readonly last: number[] = [];

  constructor(private readonly bandwidth: number) {
    this.cross = new Array<number>(bandwidth).fill(0);
  }

  push(x: number): void {
    for (let l = 1; l <= this.last.length; l++) {
      this.cross[l - 1]! += x * this.last[this.last.length - l]!;
    }
    this.last.push(x);
    if (this.last.length > this.bandwidth) this.last.shift();
    if (this.first.length < this.bandwidth) this.first.push(x);
    this.sum += x;
    this.squares += x * x;
    this.count++;
  }

  meanAndError(): { mean: number; se: number } {
    const n = this.count;
    const m = this.sum / n;
    if (n < 2) return { mean: m, se: 0 };
    const gamma0 = Math.max(0, this.squares / n - m * m);
    let longRun = gamma0;
    for (let l = 1; l <= Math.min(this.bandwidth, n - 1); l++) {
      const head = this.first.slice(0, l).reduce((a, b) => a + b, 0);
      const tail = this.last.slice(-l).reduce((a, b) => a + b, 0);
      const gamma = (this.cross[l - 1]! - m * (2 * this.sum - head - tail) + (n - l) * m * m) / n;
      longRun += 2 * (1 - l / (this.bandwidth + 1)) * gamma;
    }
    const variance = longRun > 0 ? longRun : gamma0;
    return { mean: m, se: Math.sqrt(variance / (n - 1)) };
  }
}

function dot(a: Float32Array, b: Float32Array, from = 0, to = a.length): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i]! * b[i]!;
  return s;
}

function unitSegmentsInto(
  v: Float32Array,
  segments: readonly (readonly [number, number])[],
  out: Float32Array,
): Float32Array {
  for (const [from, to] of segments) {
    const norm = Math.sqrt(dot(v, v, from, to));
    const inv = norm > 0 ? 1 / norm : 0;
    for (let i = from; i < to; i++) out[i] = v[i]! * inv;
  }
  return out;
}

function sameVector(a: Float32Array, b: Float32Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function pairwiseCosines(updates: readonly Float32Array[]): number[][] {
  const norms = updates.map((u) => Math.sqrt(dot(u, u)));
  const out = updates.map(() => new Array<number>(updates.length).fill(1));
  for (let a = 0; a < updates.length; a++) {
    for (let b = a + 1; b < updates.length; b++) {
      const norm = norms[a]! * norms[b]!;
      const c = norm > 0 ? dot(updates[a]!, updates[b]!) / norm : 0;
      out[a]![b] = c;
      out[b]![a] = c;
    }
  }
  return out;
}

function upperMedian(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[sorted.length >> 1]!;
}

class ReferenceQuarantine {
  private readonly config: Required<Omit<QuarantineConfig, 'dim' | 'segments'>>;
  private readonly segmentLengths: readonly number[] | undefined;
  private segmentBounds: (readonly [number, number])[] | undefined;
  private last: WindowReport | undefined;
  private readonly workers = new Map<string, WorkerState>();
  private readonly banned = new Set<string>();
  private dim: number | undefined;
  private current: number | undefined;
  private reference: Float32Array | null = null;

  constructor(config: QuarantineConfig) {
    const { window, threshold, strikes, floor = 0, filteredShare = 0.5, dim } = config;
    const { alignment = false, z = 5, lagSymmetry = false, lags = 6, lagZ = 3 } = config;
    const { lagMinIterations = 30, segments, alignmentWindows = 3, consensusZ = 1 } = config;
    this.segmentLengths = segments === undefined ? undefined : [...segments];
    this.config = {
      window,
      threshold,
      strikes,
      floor,
      filteredShare,
      alignment,
      z,
      alignmentWindows,
      consensusZ,
      lagSymmetry,
      lags,
      lagZ,
      lagMinIterations,
    };
    this.dim = dim;
  }

  get lastWindow(): WindowReport | undefined {
    return this.last;
  }

  get openWindow(): number | undefined {
    return this.current;
  }

  observe(workerId: string, iteration: number, update: Float32Array): boolean {
    if (this.banned.has(workerId)) return false;
    const w = this.windowOf(iteration);
    this.advanceTo(w);
    const state = this.state(workerId);
    if ((this.dim !== undefined && update.length !== this.dim) || !allFinite(update)) {
      state.hardFailures++;
      return false;
    }
    if (w < this.current!) return false;
    this.dim ??= update.length;
    state.sum ??= new Float32Array(this.dim);
    axpy(state.sum, 1, update);
    state.count++;
    return true;
  }

  observeIteration(
    iteration: number,
    updates: readonly { id: string; update: Float32Array }[],
  ): string[] {
    const accepted = updates.filter(({ id, update }) => this.observe(id, iteration, update));
    const { alignment, lagSymmetry } = this.config;
    if ((!alignment && !lagSymmetry) || accepted.length < 3 || this.dim === undefined) {
      return accepted.map((a) => a.id);
    }
    const reference = new Float32Array(this.dim);
    const lagStatistics = new Map<string, number>();
    const copied = new Set<string>();
    for (let a = 0; a < accepted.length; a++) {
      for (let b = a + 1; b < accepted.length; b++) {
        if (sameVector(accepted[a]!.update, accepted[b]!.update)) {
          copied.add(accepted[a]!.id);
          copied.add(accepted[b]!.id);
        }
      }
    }
    const pairwise = alignment ? pairwiseCosines(accepted.map((a) => a.update)) : [];
    for (const [index, { id, update }] of accepted.entries()) {
      const others = accepted.filter((a) => a.id !== id);
      const twin = (a: { update: Float32Array }) => copied.has(id) && sameVector(a.update, update);
      const distinct = others.filter((a) => !twin(a));
      const state = this.state(id);
      if (alignment) {
        const cosines = accepted.flatMap((a, j) =>
          j === index || twin(a) ? [] : [pairwise[index]![j]!],
        );
        if (cosines.length > 0) {
          state.cosines.push(upperMedian(cosines));
          const magnitude = upperMedian(cosines.map((c) => Math.abs(c)));
          state.correlations.push(this.dim! * magnitude * magnitude);
        }
      }
      if (!lagSymmetry) continue;
      coordinateMedianInto(
        (distinct.length > 0 ? distinct : others).map((a) => a.update),
        reference,
      );
      if (!copied.has(id)) {
        const statistic = this.recordPast(state, iteration, update, reference);
        if (statistic !== undefined) lagStatistics.set(id, statistic);
      }
    }
    if (lagStatistics.size >= 3) {
      const sorted = [...lagStatistics.values()].sort((a, b) => a - b);
      const k = sorted.length;
      const median = (sorted[(k - 1) >> 1]! + sorted[k >> 1]!) / 2;
      for (const [id, statistic] of lagStatistics) {
        const state = this.state(id);
        state.lagEvidence.push(statistic - median);
      }
    }
    return accepted.map((a) => a.id);
  }

  private recordPast(
    state: WorkerState,
    iteration: number,
    update: Float32Array,
    reference: Float32Array,
  ): number | undefined {
    const { lags } = this.config;
    this.segmentBounds ??= boundsOf(this.segmentLengths ?? [update.length]);
    const segments = this.segmentBounds;
    const current = {
      iteration,
      update: unitSegmentsInto(update, segments, new Float32Array(update.length)),
      reference: unitSegmentsInto(reference, segments, new Float32Array(reference.length)),
    };
    let sum = 0;
    let count = 0;
    for (const past of state.past) {
      const k = iteration - past.iteration;
      if (k < 1 || k > lags) continue;
      for (const [from, to] of segments) {
        sum +=
          dot(current.update, past.reference, from, to) -
          dot(past.update, current.reference, from, to);
      }
      count += segments.length;
    }
    state.past = state.past.filter(
      (p) => p.iteration > iteration - lags && p.iteration < iteration,
    );
    state.past.push(current);
    return count > 0 ? sum / count : undefined;
  }

  reportRejected(workerId: string, iteration: number, reason: RejectReason = 'non-finite'): void {
    if (this.banned.has(workerId)) return;
    this.advanceTo(this.windowOf(iteration));
    const state = this.state(workerId);
    if (reason === 'filtered') state.filtered++;
    else state.hardFailures++;
  }

  advance(iteration: number): WindowReport[] {
    return this.advanceTo(this.windowOf(iteration));
  }

  closeWindow(): WindowReport | undefined {
    if (this.current === undefined) return undefined;
    const report = this.evaluate(this.current);
    this.current++;
    return report;
  }

  isQuarantined(workerId: string): boolean {
    return this.banned.has(workerId);
  }

  quarantined(): string[] {
    return [...this.banned].sort();
  }

  strikes(workerId: string): number {
    return this.workers.get(workerId)?.strikes ?? 0;
  }

  forget(workerId: string): void {
    this.workers.delete(workerId);
    this.banned.delete(workerId);
  }

  private windowOf(iteration: number): number {
    if (!(iteration >= 0) || !Number.isFinite(iteration)) {
      throw new RangeError(`Quarantine: iteration must be finite and ≥ 0, got ${iteration}`);
    }
    return Math.floor(iteration / this.config.window);
  }

  private state(workerId: string): WorkerState {
    let s = this.workers.get(workerId);
    if (s === undefined) {
      s = {
        sum: null,
        count: 0,
        hardFailures: 0,
        filtered: 0,
        strikes: 0,
        cosines: [],
        correlations: [],
        alignmentZ: new Map(),
        past: [],
        lagEvidence: new SeriesMean(LAG_BANDWIDTH),
      };
      this.workers.set(workerId, s);
    }
    return s;
  }

  private advanceTo(w: number): WindowReport[] {
    if (this.current === undefined) {
      this.current = w;
      return [];
    }
    if (w <= this.current) return [];
    const report = this.evaluate(this.current);
    this.current = w;
    return [report];
  }

  private evaluate(index: number): WindowReport {
    const { threshold, strikes, floor, filteredShare } = this.config;
    const failed = new Set<string>();
    const judged: string[] = [];
    const means: Float32Array[] = [];
    for (const [id, s] of this.workers) {
      if (this.banned.has(id)) continue;
      if (s.hardFailures > 0) failed.add(id);
      if (s.filtered > filteredShare * Math.max(s.count, s.filtered)) failed.add(id);
      if (s.count > 0 && s.sum !== null) {
        const inv = 1 / s.count;
        for (let j = 0; j < s.sum.length; j++) s.sum[j]! *= inv;
        if (allFinite(s.sum)) {
          judged.push(id);
          means.push(s.sum);
        } else failed.add(id);
      }
    }
    const distances: number[] = [];
    let scale = NaN;
    if (judged.length >= 3) {
      this.reference ??= new Float32Array(this.dim!);
      coordinateMedianInto(means, this.reference);
      const counts = judged.map((id) => this.workers.get(id)!.count).sort((a, b) => a - b);
      const typical = (counts[(counts.length - 1) >> 1]! + counts[counts.length >> 1]!) / 2;
      for (let i = 0; i < means.length; i++) {
        const c = this.workers.get(judged[i]!)!.count;
        distances.push(Math.sqrt((squaredDistance(means[i]!, this.reference) * c) / typical));
      }
      const sorted = [...distances].sort((a, b) => a - b);
      const k = sorted.length;
      scale = Math.max((sorted[(k - 1) >> 1]! + sorted[k >> 1]!) / 2, floor);
      for (let i = 0; i < k; i++) {
        if (distances[i]! > threshold * scale) failed.add(judged[i]!);
      }
    }
    const directions = this.alignmentTest(index, failed);
    const lags = this.lagSymmetryTest(failed);
    const quarantined: string[] = [];
    for (const [id, s] of this.workers) {
      if (this.banned.has(id)) continue;
      if (failed.has(id)) {
        s.strikes++;
        if (s.strikes >= strikes) {
          this.banned.add(id);
          quarantined.push(id);
          s.sum = null;
          s.past = [];
        }
      }
      s.sum?.fill(0);
      s.count = 0;
      s.hardFailures = 0;
      s.filtered = 0;
      s.cosines = [];
      s.correlations = [];
    }
    this.last = {
      index,
      judged,
      distances,
      scale,
      failed: [...failed],
      quarantined,
      directions,
      lags,
    };
    return this.last;
  }

  private alignmentTest(index: number, failed: Set<string>): WindowReport['directions'] {
    const { alignment, z, threshold, alignmentWindows, consensusZ } = this.config;
    if (!alignment) return [];
    const stats: { id: string; state: WorkerState; mean: number; se: number; c: number }[] = [];
    for (const [id, state] of this.workers) {
      if (this.banned.has(id) || state.cosines.length < 3) continue;
      const c = state.correlations.reduce((x, y) => x + y, 0) / state.correlations.length;
      stats.push({ id, state, ...meanAndError(state.cosines), c });
    }
    if (stats.length < 3) return [];
    const median = (values: number[]) => {
      const sorted = [...values].sort((x, y) => x - y);
      return (sorted[(sorted.length - 1) >> 1]! + sorted[sorted.length >> 1]!) / 2;
    };
    const medianA = median(stats.map((t) => t.mean));
    const medianC = median(stats.map((t) => t.c));
    return stats.map(({ id, state, mean: a, se, c }) => {
      let windowZ = 0;
      if (medianA > consensusZ * median(stats.map((t) => t.se))) {
        const gap = -medianA / threshold - a;
        windowZ = se > 0 ? gap / se : gap > 0 ? Infinity : gap < 0 ? -Infinity : 0;
        windowZ = Math.max(-50, Math.min(50, windowZ));
      }
      state.alignmentZ.set(index, windowZ);
      let sum = 0;
      for (const [w, wz] of state.alignmentZ) if (w > index - alignmentWindows) sum += wz;
      const evidence = sum / Math.sqrt(alignmentWindows);
      const uncorrelated = c < 4 && medianC >= 16;
      const fails = evidence > z || uncorrelated;
      if (fails) failed.add(id);
      return {
        id,
        alignment: a,
        z: windowZ,
        evidence,
        correlation: c,
        uncorrelated,
        failed: fails,
      };
    });
  }

  private lagSymmetryTest(failed: Set<string>): WindowReport['lags'] {
    const { lagSymmetry, lagZ, lagMinIterations } = this.config;
    if (!lagSymmetry) return [];
    const results: WindowReport['lags'] = [];
    const evidence: { id: string; n: number; mean: number; se: number }[] = [];
    for (const [id, s] of this.workers) {
      const n = s.lagEvidence.count;
      if (this.banned.has(id) || n < lagMinIterations) continue;
      evidence.push({ id, n, ...s.lagEvidence.meanAndError() });
    }
    const means = evidence.map((e) => e.mean).sort((a, b) => a - b);
    const k = means.length;
    const center = k >= 3 ? Math.max(0, (means[(k - 1) >> 1]! + means[k >> 1]!) / 2) : 0;
    for (const { id, n, mean, se } of evidence) {
      const shift = mean - center;
      const z = se > 0 ? shift / se : shift > 0 ? Infinity : 0;
      const boundary = lagBoundary(lagZ, lagMinIterations, n);
      const fails = z > boundary;
      if (fails) failed.add(id);
      results.push({ id, shift, z, iterations: n, boundary, failed: fails });
    }
    return results;
  }
}

/**
 * Numbers equal within 1e-9 of the larger magnitude (NaN to NaN), everything else exactly. They
 * are bit for bit equal today; the tolerance leaves room for a summation in another order.
 */
function expectClose(actual: unknown, expected: unknown, path = 'report'): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    if (Number.isNaN(expected) || !Number.isFinite(expected)) {
      expect(actual, path).toBe(expected);
      return;
    }
    const tolerance = 1e-9 * Math.max(Math.abs(expected), Math.abs(actual));
    if (Math.abs(actual - expected) > tolerance) expect(actual, path).toBe(expected);
    return;
  }
  if (Array.isArray(expected)) {
    expect(Array.isArray(actual), path).toBe(true);
    const list = actual as unknown[];
    expect(list.length, `${path}.length`).toBe(expected.length);
    expected.forEach((e, i) => expectClose(list[i], e, `${path}[${i}]`));
    return;
  }
  if (typeof expected === 'object' && expected !== null) {
    expect(typeof actual, path).toBe('object');
    const record = actual as Record<string, unknown>;
    expect(Object.keys(record).sort(), path).toEqual(Object.keys(expected).sort());
    for (const [k, v] of Object.entries(expected)) expectClose(record[k], v, `${path}.${k}`);
    return;
  }
  expect(actual, path).toEqual(expected);
}

interface Scenario {
  workers: number;
  dim: number;
  /** Cut points of the segments (empty: one segment). */
  cuts: number[];
  window: number;
  strikes: number;
  alignment: boolean;
  lagSymmetry: boolean;
  lags: number;
  lagMinIterations: number;
  lagZ: number;
  iterations: number;
  /** Values from a grid of a few (ties, signed zeros) instead of Gaussian ones. */
  grid: boolean;
  seed: number;
}

const GRID = [-1, -0.5, -0, 0, 0.5, 1, 2];

/**
 * Runs the optimised quarantine and the reference on the same events and checks after each
 * that they agree: what observeIteration accepted, the last window's report (numbers within
 * 1e-9 relative), the strikes and the quarantined workers.
 */
function agree(s: Scenario): void {
  const segments = s.cuts.length === 0 ? undefined : lengthsOf(s.cuts, s.dim);
  const config: QuarantineConfig = {
    window: s.window,
    threshold: 2,
    strikes: s.strikes,
    alignment: s.alignment,
    z: 2,
    lagSymmetry: s.lagSymmetry,
    lags: s.lags,
    lagZ: s.lagZ,
    lagMinIterations: s.lagMinIterations,
    dim: s.dim,
    ...(segments ? { segments } : {}),
  };
  const optimised = new Quarantine(config);
  const reference = new ReferenceQuarantine(config);
  const rng = createRng(s.seed);
  const value = (): number =>
    s.grid ? GRID[Math.floor(rng.next() * GRID.length)]! : Math.fround(gaussian(rng));
  const ids = Array.from({ length: s.workers }, (_, i) => `w${i}`);
  const history = new Map<string, Float32Array[]>();
  let iteration = 0;
  for (let step = 0; step < s.iterations; step++) {
    // now and then an iteration skipped, or the same one again (stale or out of order)
    const roll = rng.next();
    iteration += roll < 0.05 ? 0 : roll < 0.1 ? 2 : 1;
    const updates: { id: string; update: Float32Array }[] = [];
    for (const id of ids) {
      const r = rng.next();
      if (r < 0.08) continue; // absent this iteration
      const own = history.get(id) ?? [];
      let update: Float32Array;
      if (r < 0.14 && updates.length > 0) {
        update = updates[Math.floor(rng.next() * updates.length)]!.update; // a copy
      } else if (r < 0.22 && own.length > 3) {
        update = own[own.length - 3]!; // a replay of its own
      } else if (r < 0.24) {
        update = Float32Array.from({ length: s.dim }, (_, j) => (j === 0 ? NaN : value()));
      } else if (r < 0.25) {
        update = new Float32Array(s.dim + 1);
      } else {
        update = Float32Array.from({ length: s.dim }, value);
      }
      own.push(update);
      history.set(id, own);
      updates.push({ id: rng.next() < 0.02 && updates.length > 0 ? updates[0]!.id : id, update });
    }
    expect(optimised.observeIteration(iteration, updates)).toEqual(
      reference.observeIteration(iteration, updates),
    );
    const event = rng.next();
    if (event < 0.03) {
      const id = ids[Math.floor(rng.next() * ids.length)]!;
      optimised.forget(id);
      reference.forget(id);
    } else if (event < 0.06) {
      const id = ids[Math.floor(rng.next() * ids.length)]!;
      const reason: RejectReason = rng.next() < 0.5 ? 'filtered' : 'non-finite';
      optimised.reportRejected(id, iteration, reason);
      reference.reportRejected(id, iteration, reason);
    }
    expectClose(optimised.lastWindow, reference.lastWindow, `iteration ${iteration}`);
  }
  expectClose(optimised.closeWindow(), reference.closeWindow(), 'last window');
  expect(optimised.quarantined()).toEqual(reference.quarantined());
  for (const id of ids) expect(optimised.strikes(id)).toBe(reference.strikes(id));
}

function lengthsOf(cuts: number[], dim: number): number[] {
  const points = [...new Set(cuts.map((c) => 1 + (c % (dim - 1))))].sort((a, b) => a - b);
  return [...points, dim].map((p, i) => p - (i === 0 ? 0 : points[i - 1]!));
}

describe('Quarantine.observeIteration agrees with the straightforward computation', () => {
  it('on random clusters: copies, replays, ties, signed zeros, gaps, segments', () => {
    fc.assert(
      fc.property(
        fc.record({
          workers: fc.integer({ min: 2, max: 9 }),
          dim: fc.integer({ min: 2, max: 40 }),
          cuts: fc.array(fc.nat(), { maxLength: 3 }),
          window: fc.integer({ min: 1, max: 6 }),
          strikes: fc.integer({ min: 1, max: 4 }),
          alignment: fc.boolean(),
          lagSymmetry: fc.boolean(),
          lags: fc.integer({ min: 1, max: 8 }),
          lagMinIterations: fc.integer({ min: 2, max: 8 }),
          lagZ: fc.constantFrom(0.5, 1, 3),
          iterations: fc.integer({ min: 1, max: 40 }),
          grid: fc.boolean(),
          seed: fc.nat(),
        }),
        (scenario) => agree(scenario),
      ),
      { numRuns: 300 },
    );
  });

  it("at a real model's size: 4 and 7 workers, two layers", () => {
    // the MLP's layers, scaled down: 4,000 and 129 parameters; 4 takes medianOfOthersOfFour,
    // 7 the sorting path
    for (const workers of [4, 7]) {
      agree({
        workers,
        dim: 4129,
        cuts: [4000],
        window: 5,
        strikes: 3,
        alignment: true,
        lagSymmetry: true,
        lags: 6,
        lagMinIterations: 5,
        lagZ: 3,
        iterations: 30,
        grid: false,
        seed: workers,
      });
    }
  });
});
