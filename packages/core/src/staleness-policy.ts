/**
 * What the coordinator does with seed 001's staleness analysis (issue 16, items 2 and 3): how
 * far a stale update is allowed to move the model, and which staleness threshold S an `auto`
 * job runs with.
 *
 * Step scale. Along a Hessian direction with eigenvalue h, an update that is d iterations stale
 * acts like the delay equation x'(t) = −a·x(t − τ) with a·τ = η·h·d·p (a = η·h·λ·p and
 * τ = d/λ, so the arrival rate λ cancels; p ≤ 1 the acceptance). For one delay the rightmost
 * root is real and the decay fastest at a·τ = 1/e, oscillating above it and divergent from
 * a·τ = π/2 (sdde.ts `fixedDelayRoot`). `stalenessStepScale` shrinks the step of an update of
 * delay d just enough that η·w·h·d ≤ 1/e: w = min(1, 1/(e·η·h·d)). Guarantee: w ∈ (0, 1];
 * w = 1 for fresh updates and whenever the delay is below the critical damping point, so a
 * lock-step swarm (d = 0) is unchanged; w is non-increasing in d, η and h.
 *
 * Auto threshold. `stalenessCandidates` is the (n, S) grid the analysis runs over: tab counts
 * 1–8, 10, 12, 16, 20, 24, 32 up to max(8, 2·n0), and n0 itself, thresholds 0..max(3, S + 1)
 * (0..AUTO_MAX_STALENESS when auto). `decideAutoStaleness` turns the analysed grid into the
 * threshold the coordinator enforces: the fastest stable S for the tabs active now, otherwise
 * the current S is kept (a swarm that diverges at every S needs a smaller η, not a different
 * threshold). The tab count the whole grid prefers is reported with it.
 *
 * Parameters: η (current learning rate), h (the job's curvature estimate, curvature.ts), the
 * delay d in iterations (proposal age + its registers' staleness). Paper: seed 001
 * (../shared/seeds/async-sgd-sdde-staleness.md).
 */
import { AUTO_MAX_STALENESS } from '@swarmgrad/protocol';
import { recommend, type StalenessPoint } from './sdde.ts';

// the job schema (protocol) owns the bounds: tabs read them too
export { AUTO_INITIAL_STALENESS, AUTO_MAX_STALENESS } from '@swarmgrad/protocol';

const CRITICAL_DAMPING = 1 / Math.E;

/** The factor (0, 1] applied to an update `delay` iterations stale (see the file header). */
export function stalenessStepScale(delay: number, learningRate: number, curvature: number): number {
  if (!(delay > 0) || !(learningRate > 0) || !(curvature > 0)) return 1;
  if (!Number.isFinite(delay) || !Number.isFinite(learningRate) || !Number.isFinite(curvature))
    return 1;
  const damping = learningRate * curvature * delay;
  return damping <= CRITICAL_DAMPING ? 1 : CRITICAL_DAMPING / damping;
}

export interface StalenessCandidates {
  workerCounts: number[];
  thresholds: number[];
}

/** The (n, S) grid analysed for `activeTabs` tabs running with threshold `threshold`. */
export function stalenessCandidates(
  activeTabs: number,
  threshold: number,
  auto = false,
): StalenessCandidates {
  const maxWorkers = Math.min(32, Math.max(8, 2 * activeTabs));
  const workerCounts = [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 24, 32].filter(
    (n) => n <= maxWorkers,
  );
  // the tabs running now are always analysed: an auto job chooses S for them
  if (!workerCounts.includes(activeTabs) && activeTabs >= 1) workerCounts.push(activeTabs);
  workerCounts.sort((a, b) => a - b);
  const maxThreshold = auto ? AUTO_MAX_STALENESS : Math.min(8, Math.max(3, threshold + 1));
  const thresholds = Array.from({ length: maxThreshold + 1 }, (_, i) => i);
  if (!thresholds.includes(threshold)) thresholds.push(threshold);
  return { workerCounts, thresholds };
}

export interface AutoStalenessDecision {
  /** The threshold to enforce from now on. */
  threshold: number;
  /** The tab count the analysis found fastest over all candidates (reported, not enforced). */
  workers: number;
  /** Whether the threshold changed. */
  changed: boolean;
  reason: string;
}

/**
 * The threshold an auto job enforces, from the analysed (n, S) grid: the fastest stable S for
 * the `activeTabs` tabs that run now (every connected tab stays active, so S is chosen for
 * them, not for the tab count the whole grid would prefer, which is reported as `workers`).
 * `minThreshold` (default 0): the lowest S it may choose. A pipelined job passes 1: its
 * registers are one iteration stale by construction, S = 0 makes its tabs drop them all and
 * work in lock-step, and the delays it then measures (all 0) could never argue for more.
 */
export function decideAutoStaleness(
  allPoints: readonly StalenessPoint[],
  activeTabs: number,
  currentThreshold: number,
  { minThreshold = 0 }: { minThreshold?: number } = {},
): AutoStalenessDecision {
  const allowed = allPoints.filter((p) => p.threshold >= minThreshold);
  const points = allowed.length > 0 ? allowed : allPoints;
  const overall = recommend(points);
  const mine = points.filter((p) => p.workers === activeTabs);
  const forNow = mine.length > 0 ? recommend(mine) : overall;
  const fastest =
    overall.workers === activeTabs
      ? `${activeTabs} tabs is also the fastest tab count analysed`
      : `${overall.workers} tabs would be fastest (${overall.reason})`;
  if (!forNow.stable) {
    return {
      threshold: currentThreshold,
      workers: overall.workers,
      changed: false,
      reason: `kept S=${currentThreshold}: ${forNow.reason}`,
    };
  }
  const threshold = Math.min(AUTO_MAX_STALENESS, Math.max(0, forNow.threshold));
  const changed = threshold !== currentThreshold;
  return {
    threshold,
    workers: overall.workers,
    changed,
    reason:
      `${changed ? `S ${currentThreshold} → ${threshold}` : `S=${threshold} kept`}: the fastest ` +
      `stable threshold for ${activeTabs} tabs (${describePoint(forNow.point)}); ${fastest}`,
  };
}

function describePoint(p: StalenessPoint): string {
  return `rate ${p.rate.toPrecision(3)}/s, accepts ${(100 * p.acceptance).toPrecision(3)}% of updates`;
}
