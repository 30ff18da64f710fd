/**
 * Shared by min-max.ts and min-sum.ts: m = μ + γ·p with γ the largest value meeting the
 * distance budget, solved in closed form (see min-max.ts for the argument).
 */
import {
  honestPool,
  poolStatistics,
  toFloat32,
  type AttackInput,
  type Perturbation,
} from './attack.ts';

/** p = −σ, −μ/‖μ‖ or −sign(μ). */
export function perturbationOf(
  kind: Perturbation,
  mean: Float64Array,
  std: Float64Array,
): Float64Array {
  const d = mean.length;
  const p = new Float64Array(d);
  if (kind === 'std') {
    for (let j = 0; j < d; j++) p[j] = -std[j]!;
  } else if (kind === 'sign') {
    for (let j = 0; j < d; j++) p[j] = -Math.sign(mean[j]!);
  } else {
    let n = 0;
    for (let j = 0; j < d; j++) n += mean[j]! * mean[j]!;
    n = Math.sqrt(n);
    if (n > 0) for (let j = 0; j < d; j++) p[j] = -mean[j]! / n;
  }
  return p;
}

/** Largest γ ≥ 0 with a + 2bγ + cγ² ≤ budget (c > 0, a ≤ budget). */
function largestRoot(a: number, b: number, c: number, budget: number): number {
  const slack = Math.max(0, budget - a);
  return (-b + Math.sqrt(b * b + c * slack)) / c;
}

export function craftOptimized(
  input: AttackInput,
  kind: Perturbation,
  budget: 'max' | 'sum',
): Float32Array {
  const pool = honestPool(input);
  const { mean, std } = poolStatistics(pool);
  const p = perturbationOf(kind, mean, std);
  const d = mean.length;
  let c = 0;
  for (let j = 0; j < d; j++) c += p[j]! * p[j]!;
  if (pool.length < 2 || c === 0) return toFloat32(mean);
  // a_i = ‖μ − h_i‖², b_i = ⟨p, μ − h_i⟩, and pairwise squared distances
  const n = pool.length;
  const a = new Float64Array(n);
  const b = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const h = pool[i]!;
    let ai = 0;
    let bi = 0;
    for (let j = 0; j < d; j++) {
      const e = mean[j]! - h[j]!;
      ai += e * e;
      bi += p[j]! * e;
    }
    a[i] = ai;
    b[i] = bi;
  }
  const pair = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = i + 1; k < n; k++) {
      let s = 0;
      const x = pool[i]!;
      const y = pool[k]!;
      for (let j = 0; j < d; j++) {
        const e = x[j]! - y[j]!;
        s += e * e;
      }
      pair[i * n + k] = s;
      pair[k * n + i] = s;
    }
  }
  let gamma: number;
  if (budget === 'max') {
    let maxPair = 0;
    for (const s of pair) maxPair = Math.max(maxPair, s);
    gamma = Infinity;
    for (let i = 0; i < n; i++) gamma = Math.min(gamma, largestRoot(a[i]!, b[i]!, c, maxPair));
  } else {
    let maxSum = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += pair[i * n + k]!;
      maxSum = Math.max(maxSum, s);
    }
    let sa = 0;
    let sb = 0;
    for (let i = 0; i < n; i++) {
      sa += a[i]!;
      sb += b[i]!;
    }
    gamma = largestRoot(sa, sb, n * c, maxSum);
  }
  // a hair inside the budget, so float32 rounding of the output does not cross it
  gamma *= 1 - 1e-6;
  const out = new Float32Array(d);
  for (let j = 0; j < d; j++) out[j] = mean[j]! + gamma * p[j]!;
  return out;
}
