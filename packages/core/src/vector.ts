/**
 * Small dense-vector helpers shared by the core algorithms. Plain loops over Float32Array:
 * no allocation on the hot paths, so callers pass the output buffer.
 */

/** True when every coordinate is finite (no NaN, no ±∞). */
export function allFinite(v: Float32Array): boolean {
  for (let i = 0; i < v.length; i++) {
    // x - x is NaN exactly when x is NaN or ±∞
    const x = v[i]!;
    if (x - x !== 0) return false;
  }
  return true;
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function l2Norm(v: Float32Array): number {
  return Math.sqrt(dot(v, v));
}

export function squaredDistance(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    s += d * d;
  }
  return s;
}

/** out += alpha * x */
export function axpy(out: Float32Array, alpha: number, x: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i]! += alpha * x[i]!;
}

/** out = a - b */
export function subtract(out: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i]! - b[i]!;
}

/** Largest per-coordinate spread max - min over a set of equal-length vectors. */
export function maxSpread(vectors: readonly Float32Array[]): number {
  if (vectors.length === 0) return 0;
  const d = vectors[0]!.length;
  let worst = 0;
  for (let i = 0; i < d; i++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of vectors) {
      const x = v[i]!;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (hi - lo > worst) worst = hi - lo;
  }
  return worst;
}
