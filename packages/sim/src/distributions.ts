/**
 * Time distributions of the scenario (compute time per local step, link latency), sampled
 * from core's seeded generator so runs are reproducible.
 *
 * - constant: T = value.
 * - shifted-exponential: T = shift + Exp(mean) — the classic straggler model of gradient
 *   coding and backup-worker papers (seeds 003, 004): a deterministic floor plus a memoryless
 *   tail.
 * - log-normal: T = median · exp(σ·N(0, 1)) — device speed spread (phones vs desktops).
 * - pareto: T = scale · U^(−1/α), heavy-tailed (α ≤ 2: infinite variance; α ≤ 1: infinite
 *   mean) — rare, very slow stragglers.
 * Every sampler returns a finite value ≥ 0.
 */
import { gaussian, type Rng } from '@swarmgrad/core';

export type TimeDistribution =
  | { kind: 'constant'; value: number }
  | { kind: 'shifted-exponential'; shift: number; mean: number }
  | { kind: 'log-normal'; median: number; sigma: number }
  | { kind: 'pareto'; scale: number; alpha: number };

export function sampleTime(dist: TimeDistribution, rng: Rng): number {
  switch (dist.kind) {
    case 'constant':
      return dist.value;
    case 'shifted-exponential': {
      let u = rng.next();
      while (u === 0) u = rng.next();
      return dist.shift - dist.mean * Math.log(u);
    }
    case 'log-normal':
      return dist.median * Math.exp(dist.sigma * gaussian(rng));
    case 'pareto': {
      let u = rng.next();
      while (u === 0) u = rng.next();
      return Math.min(dist.scale * u ** (-1 / dist.alpha), 1e9);
    }
  }
}

/** E[T] (Infinity for a Pareto tail with α ≤ 1). */
export function meanTime(dist: TimeDistribution): number {
  switch (dist.kind) {
    case 'constant':
      return dist.value;
    case 'shifted-exponential':
      return dist.shift + dist.mean;
    case 'log-normal':
      return dist.median * Math.exp((dist.sigma * dist.sigma) / 2);
    case 'pareto':
      return dist.alpha <= 1 ? Infinity : (dist.alpha * dist.scale) / (dist.alpha - 1);
  }
}

export function checkDistribution(name: string, dist: TimeDistribution): void {
  const bad = (what: string): never => {
    throw new RangeError(`${name}: ${what}`);
  };
  const nonNegative = (v: number, field: string): void => {
    if (!(v >= 0) || !Number.isFinite(v)) bad(`${field} must be finite and ≥ 0, got ${v}`);
  };
  switch (dist.kind) {
    case 'constant':
      nonNegative(dist.value, 'value');
      return;
    case 'shifted-exponential':
      nonNegative(dist.shift, 'shift');
      nonNegative(dist.mean, 'mean');
      return;
    case 'log-normal':
      nonNegative(dist.median, 'median');
      nonNegative(dist.sigma, 'sigma');
      return;
    case 'pareto':
      nonNegative(dist.scale, 'scale');
      if (!(dist.alpha > 0)) bad(`alpha must be > 0, got ${dist.alpha}`);
      return;
    default:
      bad(`unknown distribution ${(dist as { kind: string }).kind}`);
  }
}
