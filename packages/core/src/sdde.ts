/**
 * Staleness analysis of asynchronous SGD as a delay differential equation (DESIGN step 6,
 * seed ../shared/seeds/async-sgd-sdde-staleness.md: asynchronous SGD analysed with stochastic
 * delay differential equations and the Poisson approximation of gradient arrivals).
 *
 * Model. Along a Hessian eigen-direction with eigenvalue h the linearised dynamics are
 *   x'(t) = −a · E[x(t − D)],  a = η · h · λ · p,
 * η the learning rate, λ = n / E[T] the gradient arrival rate of n active workers (T a
 * worker's compute + communication time, seconds), p = P(staleness ≤ S) the acceptance
 * probability for staleness threshold S, and D the delay (seconds) of an accepted update.
 * The characteristic equation is s + a·Ĝ(s) = 0 with Ĝ(s) = E[exp(−s·D)], the empirical mean
 * over a delay sample. Its rightmost root s* decides the outcome: Re(s*) < 0 converges, at the
 * speed −Re(s*) per second (Im(s*) ≠ 0 means it oscillates); Re(s*) > 0 diverges.
 *
 * Guarantees.
 * - `fixedDelayRoot` is the closed form: for one delay τ the roots are W_k(−aτ)/τ and the
 *   rightmost is the principal branch W_0; it is stable iff 0 < a·τ < π/2.
 * - `rightmostRoot` returns a root with |s + aĜ(s)| ≤ 1e-12 · max(1, |s|, |a|·E|e^{−sD}|),
 *   found by complex Newton from Lambert-W seeds and a seed grid. Every root with Re ≥ σ lies in
 *   the disc |s| ≤ |a|·E[e^{−σD}], so the region right of the returned root is bounded; when
 *   `certified` is true the argument principle counted zero roots in it (right of
 *   Re(s*) + 1e-6·scale). Sampling the contour is adaptive, not interval arithmetic, so the
 *   certificate is numerical, not a proof.
 * Units. `analyzeStaleness` takes delays as staleness in iterations (the version difference the
 * coordinator observes: how many updates were applied between a worker's read and its write),
 * which is what threshold S is compared with; it converts them to seconds for the DDE by
 * D_sec = D_iter / λ(n). `rightmostRoot` itself is unit-agnostic: s has the inverse unit of D.
 */

export type DelaySample = readonly number[] | Float64Array;

/** Delay sample (staleness in iterations) that n active workers would see. */
export type DelayModel = (workers: number) => DelaySample;

export interface CharacteristicRoot {
  re: number;
  /** Always ≥ 0: roots come in conjugate pairs, the upper one is returned. */
  im: number;
  /** Newton iterations taken from the seed that produced this root. */
  iterations: number;
  /**
   * True when the argument principle found no other root to the right of this one (see the
   * file header). Always true for the closed-form cases (no delay, a = 0, one delay value).
   */
  certified: boolean;
}

// ---------------------------------------------------------------------------------------------
// Complex helpers (plain objects; the hot loop in `evaluate` works on numbers directly).

interface Complex {
  re: number;
  im: number;
}

const c = (re: number, im = 0): Complex => ({ re, im });
const cadd = (x: Complex, y: Complex): Complex => c(x.re + y.re, x.im + y.im);
const csub = (x: Complex, y: Complex): Complex => c(x.re - y.re, x.im - y.im);
const cmul = (x: Complex, y: Complex): Complex =>
  c(x.re * y.re - x.im * y.im, x.re * y.im + x.im * y.re);
const cscale = (x: Complex, k: number): Complex => c(x.re * k, x.im * k);
const cabs = (x: Complex): number => Math.hypot(x.re, x.im);
function cdiv(x: Complex, y: Complex): Complex {
  // Smith's algorithm: avoids overflow in |y|².
  if (Math.abs(y.re) >= Math.abs(y.im)) {
    const r = y.im / y.re;
    const d = y.re + y.im * r;
    return c((x.re + x.im * r) / d, (x.im - x.re * r) / d);
  }
  const r = y.re / y.im;
  const d = y.re * r + y.im;
  return c((x.re * r + x.im) / d, (x.im * r - x.re) / d);
}
function cexp(x: Complex): Complex {
  const m = Math.exp(x.re);
  return c(m * Math.cos(x.im), m * Math.sin(x.im));
}
function clog(x: Complex): Complex {
  return c(Math.log(cabs(x)), Math.atan2(x.im, x.re));
}
function csqrt(x: Complex): Complex {
  // Principal square root, branch cut on the negative real axis (upper side for im = +0).
  const r = cabs(x);
  if (r === 0) return c(0, 0);
  const re = Math.sqrt((r + Math.abs(x.re)) / 2);
  if (x.re >= 0) return c(re, x.im / (2 * re));
  return c(Math.abs(x.im) / (2 * re), x.im < 0 ? -re : re);
}

// ---------------------------------------------------------------------------------------------
// Lambert W.

const INV_E = Math.exp(-1);

/**
 * Real principal branch W0(x) for x ≥ −1/e: the w ≥ −1 with w·e^w = x. Halley iteration from a
 * branch-point series (near −1/e), log1p (moderate x) or the asymptotic log x − log log x.
 */
export function lambertW0(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === Infinity) return Infinity;
  const q = Math.E * x + 1; // 0 at the branch point
  if (q < 0) {
    if (q > -1e-12) return -1;
    throw new RangeError(`lambertW0: x = ${x} is below −1/e`);
  }
  if (x === 0) return 0;
  let w: number;
  if (q < 0.5) {
    const p = Math.sqrt(2 * q);
    w = -1 + p * (1 + p * (-1 / 3 + p * (11 / 72 + p * (-43 / 540))));
  } else if (x < 3) {
    w = Math.log1p(x);
  } else {
    const l = Math.log(x);
    w = l - Math.log(l);
  }
  for (let i = 0; i < 64; i++) {
    const ew = Math.exp(w);
    const f = w * ew - x;
    const wp1 = w + 1;
    if (wp1 === 0 || f === 0) break;
    const step = f / (ew * wp1 - ((w + 2) * f) / (2 * wp1));
    w -= step;
    if (Math.abs(step) <= 4e-16 * (1 + Math.abs(w))) break;
  }
  return w;
}

/**
 * Complex Lambert W, branch k (Corless et al. conventions: W_{−1}(x) for real x in (−1/e, 0)
 * is real; on the cut x < −1/e the principal branch takes Im > 0). Halley iteration on
 * w·e^w = z from a branch-point series near −1/e or the asymptotic series
 * L1 − log L1 + log L1 / L1, L1 = log z + 2πik. Accurate to a few ulps away from the branch
 * point, ~1e-8 at it. Meant for k ∈ {−1, 0, 1} (seeds and the fixed-delay closed form); other
 * branches use the asymptotic guess and are not tested.
 */
export function lambertW(
  k: number,
  z: { re: number; im: number } | number,
): { re: number; im: number } {
  if (!Number.isInteger(k)) throw new RangeError(`lambertW: branch ${k} is not an integer`);
  const zz = typeof z === 'number' ? c(z) : z;
  if (!Number.isFinite(zz.re) || !Number.isFinite(zz.im)) return c(NaN, NaN);
  if (zz.re === 0 && zz.im === 0) return k === 0 ? c(0) : c(-Infinity);
  if (k === 0 && zz.im === 0 && zz.re >= -INV_E) return c(lambertW0(zz.re));
  if (k === -1 && zz.im === 0 && zz.re >= -INV_E && zz.re < 0) {
    return c(lambertWm1Real(zz.re));
  }
  const q = cadd(cscale(zz, Math.E), c(1)); // e·z + 1
  const nearBranch = cabs(q) < 0.3 * Math.E;
  let w: Complex;
  const branchSeries = (sign: 1 | -1): Complex => {
    const p = cscale(csqrt(cscale(q, 2)), sign);
    // −1 + p − p²/3 + 11p³/72 − 43p⁴/540
    let acc = c(-43 / 540);
    acc = cadd(cmul(acc, p), c(11 / 72));
    acc = cadd(cmul(acc, p), c(-1 / 3));
    acc = cadd(cmul(acc, p), c(1));
    return cadd(c(-1), cmul(acc, p));
  };
  if (k === 0 && nearBranch) w = branchSeries(1);
  else if (k === -1 && nearBranch && zz.im >= 0) w = branchSeries(-1);
  else if (k === 1 && nearBranch && zz.im < 0) w = branchSeries(-1);
  else if (k === 0 && cabs(zz) < 2 && cabs(cadd(c(1), zz)) >= 0.5) w = clog(cadd(c(1), zz));
  else {
    const l1 = cadd(clog(zz), c(0, 2 * Math.PI * k));
    const l2 = clog(l1);
    w = cadd(csub(l1, l2), cdiv(l2, l1));
  }
  for (let i = 0; i < 100; i++) {
    const ew = cexp(w);
    const f = csub(cmul(w, ew), zz);
    const wp1 = cadd(w, c(1));
    if (cabs(wp1) === 0 || cabs(f) === 0) break;
    const denom = csub(cmul(ew, wp1), cdiv(cmul(cadd(w, c(2)), f), cscale(wp1, 2)));
    const step = cdiv(f, denom);
    w = csub(w, step);
    if (cabs(step) <= 4e-16 * (1 + cabs(w))) break;
  }
  return w;
}

/** Real W_{−1}(x) for x in [−1/e, 0): the w ≤ −1 with w·e^w = x. */
function lambertWm1Real(x: number): number {
  const q = Math.E * x + 1;
  let w: number;
  if (q < 0.5) {
    const p = -Math.sqrt(Math.max(0, 2 * q));
    w = -1 + p * (1 + p * (-1 / 3 + p * (11 / 72 + p * (-43 / 540))));
  } else {
    const l = Math.log(-x);
    w = l - Math.log(-l);
  }
  for (let i = 0; i < 64; i++) {
    const ew = Math.exp(w);
    const f = w * ew - x;
    const wp1 = w + 1;
    if (wp1 === 0 || f === 0) break;
    const step = f / (ew * wp1 - ((w + 2) * f) / (2 * wp1));
    w -= step;
    if (w > -1) w = -1; // stay on this branch
    if (Math.abs(step) <= 4e-16 * (1 + Math.abs(w))) break;
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Fixed delay: closed form.

/**
 * Rightmost root of s + a·e^{−sτ} = 0: s = W0(−aτ)/τ (im ≥ 0); s = −a when τ = 0.
 */
export function fixedDelayRoot(a: number, tau: number): CharacteristicRoot {
  if (!Number.isFinite(a) || !Number.isFinite(tau) || tau < 0) {
    throw new RangeError(`fixedDelayRoot: need finite a and tau ≥ 0, got a=${a}, tau=${tau}`);
  }
  if (tau === 0 || a === 0) return { re: -a, im: 0, iterations: 0, certified: true };
  const w = lambertW(0, -a * tau);
  return { re: w.re / tau, im: Math.abs(w.im) / tau, iterations: 0, certified: true };
}

/** x' = −a·x(t − τ) is asymptotically stable iff a > 0 and a·τ < π/2. */
export function isStableFixedDelay(a: number, tau: number): boolean {
  if (!(tau >= 0) || !Number.isFinite(a)) return false;
  return a > 0 && a * tau < Math.PI / 2;
}

// ---------------------------------------------------------------------------------------------
// General delay sample: Newton from seeds, certified by the argument principle.

interface Distribution {
  values: Float64Array; // distinct delays
  weights: Float64Array; // probabilities, sum 1
  mean: number;
  max: number;
  minPositive: number; // Infinity when all zero
  median: number;
}

/**
 * Distinct delays with their probabilities; with `gains` (one per delay, in [0, 1]: the step
 * factor that update was applied with) each probability is scaled by its delays' gains, so
 * Ĝ(s) = E[g·e^{−sD}] and the weights sum to E[g] ≤ 1.
 */
function compress(delays: DelaySample, gains?: DelaySample): Distribution {
  const n = delays.length;
  if (n === 0) throw new RangeError('delay sample is empty');
  if (gains !== undefined && gains.length !== n)
    throw new RangeError('gains must have one entry per delay');
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => delays[x]! - delays[y]!);
  const sorted = Float64Array.from(order, (i) => delays[i]!);
  if (!(sorted[0]! >= 0) || !Number.isFinite(sorted[n - 1]!)) {
    throw new RangeError('delays must be finite and ≥ 0');
  }
  const values: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < n; i++) {
    const d = sorted[i]!;
    const g = gains === undefined ? 1 : gains[order[i]!]!;
    if (!(g >= 0 && g <= 1)) throw new RangeError(`gain ${g} is not in [0, 1]`);
    if (values.length > 0 && values[values.length - 1] === d) counts[counts.length - 1]! += g;
    else {
      values.push(d);
      counts.push(g);
    }
  }
  let mean = 0;
  for (let i = 0; i < n; i++) mean += sorted[i]!;
  mean /= n;
  let minPositive = Infinity;
  for (const v of values) {
    if (v > 0) {
      minPositive = v;
      break;
    }
  }
  return {
    values: Float64Array.from(values),
    weights: Float64Array.from(counts, (k) => k / n),
    mean,
    max: sorted[n - 1]!,
    minPositive,
    median: sorted[Math.floor(n / 2)]!,
  };
}

/**
 * Histogram of a large sample (bins of equal width, each at the mean of its delays) used only
 * to find seeds cheaply; roots are then polished on the exact sample.
 */
function coarsen(dist: Distribution, bins: number): Distribution {
  const w = new Float64Array(bins);
  const m = new Float64Array(bins);
  const width = dist.max / bins;
  for (let j = 0; j < dist.values.length; j++) {
    const d = dist.values[j]!;
    const b = Math.min(bins - 1, Math.floor(d / width));
    w[b]! += dist.weights[j]!;
    m[b]! += dist.weights[j]! * d;
  }
  const values: number[] = [];
  const weights: number[] = [];
  for (let b = 0; b < bins; b++) {
    if (w[b]! > 0) {
      values.push(m[b]! / w[b]!);
      weights.push(w[b]!);
    }
  }
  return { ...dist, values: Float64Array.from(values), weights: Float64Array.from(weights) };
}

interface Evaluation {
  /** f(s) = s + a·Ĝ(s) */
  f: Complex;
  /** f'(s) = 1 − a·E[D·e^{−sD}] */
  df: Complex;
  /** |a|·E|e^{−sD}|: magnitude of the delayed term, for the residual tolerance */
  mag: number;
}

function evaluate(a: number, dist: Distribution, s: Complex): Evaluation | null {
  if (-s.re * dist.max > 600) return null; // exp overflow
  let gRe = 0;
  let gIm = 0;
  let hRe = 0;
  let hIm = 0;
  let mag = 0;
  const { values, weights } = dist;
  for (let j = 0; j < values.length; j++) {
    const d = values[j]!;
    const w = weights[j]! * Math.exp(-s.re * d);
    const ang = s.im * d;
    const cr = w * Math.cos(ang);
    const ci = -w * Math.sin(ang);
    gRe += cr;
    gIm += ci;
    hRe += d * cr;
    hIm += d * ci;
    mag += w;
  }
  return {
    f: c(s.re + a * gRe, s.im + a * gIm),
    df: c(1 - a * hRe, -a * hIm),
    mag: Math.abs(a) * mag,
  };
}

function residualTolerance(s: Complex, ev: Evaluation): number {
  return 1e-12 * Math.max(1, cabs(s), ev.mag);
}

interface NewtonResult {
  s: Complex;
  iterations: number;
}

function newton(
  a: number,
  dist: Distribution,
  seed: Complex,
  scale: number,
  known: readonly NewtonResult[] = [],
): NewtonResult | null {
  let s = seed;
  let bestS = seed;
  let bestR = Infinity;
  let bestTol = 0;
  let bestIt = 0;
  const maxStep = 2 * scale;
  for (let it = 1; it <= 120; it++) {
    // Arrived at a root already polished: no need to polish it again.
    const near = Math.max(scale, cabs(s)) * 1e-9;
    for (const q of known) {
      if (Math.abs(q.s.re - s.re) <= near && Math.abs(q.s.im - Math.abs(s.im)) <= near) return null;
    }
    const ev = evaluate(a, dist, s);
    if (ev === null) return null;
    const r = cabs(ev.f);
    if (r < bestR) {
      bestR = r;
      bestS = s;
      bestTol = residualTolerance(s, ev);
      bestIt = it - 1;
    }
    if (r === 0) break;
    const dfAbs = cabs(ev.df);
    if (dfAbs === 0 || !Number.isFinite(dfAbs)) break;
    let step = cdiv(ev.f, ev.df);
    const len = cabs(step);
    if (len > maxStep) step = cscale(step, maxStep / len);
    s = csub(s, step);
    if (!Number.isFinite(s.re) || !Number.isFinite(s.im)) return null;
    if (Math.abs(s.re) > 1e3 * scale || Math.abs(s.im) > 1e4 * scale) return null;
    // Converged to rounding: a tiny step once the residual is already acceptable.
    if (len <= 1e-15 * Math.max(1, cabs(s)) && r <= bestTol) break;
  }
  if (!(bestR <= bestTol)) return null;
  return { s: c(bestS.re, Math.abs(bestS.im)), iterations: bestIt };
}

/**
 * Winding number of f along the boundary of [x0, x1] × [−y, y] (counter-clockwise), i.e. the
 * number of roots inside. Returns null when the contour passes through (numerically) a root or
 * the sampling budget is exceeded.
 */
function countRoots(
  a: number,
  dist: Distribution,
  x0: number,
  x1: number,
  y: number,
  budget: number,
): number | null {
  const corners: Complex[] = [c(x0, -y), c(x1, -y), c(x1, y), c(x0, y), c(x0, -y)];
  // Resolution: between samples every e^{−iωD} term turns by at most ~0.4 rad.
  const unit = 0.4 / Math.max(dist.max, 1e-300);
  let evaluations = 0;
  let total = 0;
  const fAt = (s: Complex): Complex | null => {
    evaluations++;
    const ev = evaluate(a, dist, s);
    if (ev === null) return null;
    if (cabs(ev.f) <= 1e-14 * Math.max(1, cabs(s), ev.mag)) return null;
    return ev.f;
  };
  const walk = (p0: Complex, f0: Complex, p1: Complex, f1: Complex, depth: number): boolean => {
    const d = cdiv(f1, f0);
    const dArg = Math.atan2(d.im, d.re);
    if (Math.abs(dArg) < 0.4 || depth >= 48) {
      total += dArg;
      return true;
    }
    if (evaluations > budget) return false;
    const pm = cscale(cadd(p0, p1), 0.5);
    const fm = fAt(pm);
    if (fm === null) return false;
    return walk(p0, f0, pm, fm, depth + 1) && walk(pm, fm, p1, f1, depth + 1);
  };
  for (let e = 0; e < 4; e++) {
    const p0 = corners[e]!;
    const p1 = corners[e + 1]!;
    const len = cabs(csub(p1, p0));
    const pieces = Math.max(16, Math.ceil(len / unit));
    if (evaluations + pieces > budget) return null;
    let prev = p0;
    let fPrev = fAt(prev);
    if (fPrev === null) return null;
    for (let i = 1; i <= pieces; i++) {
      const t = i / pieces;
      const p = c(p0.re + (p1.re - p0.re) * t, p0.im + (p1.im - p0.im) * t);
      const fp = fAt(p);
      if (fp === null) return null;
      if (!walk(prev, fPrev, p, fp, 0)) return null;
      prev = p;
      fPrev = fp;
    }
  }
  const winding = total / (2 * Math.PI);
  const rounded = Math.round(winding);
  if (Math.abs(winding - rounded) > 0.05) return null;
  return rounded;
}

function dedupeInsert(roots: NewtonResult[], r: NewtonResult, scale: number): void {
  for (const q of roots) {
    if (cabs(csub(q.s, r.s)) <= 1e-7 * Math.max(scale, cabs(r.s))) {
      if (r.iterations < q.iterations) q.iterations = r.iterations;
      return;
    }
  }
  roots.push(r);
}

function grid(re0: number, re1: number, im0: number, im1: number, nRe: number, nIm: number) {
  const seeds: Complex[] = [];
  for (let i = 0; i < nRe; i++) {
    const re = nRe === 1 ? re0 : re0 + ((re1 - re0) * i) / (nRe - 1);
    for (let j = 0; j < nIm; j++) {
      const im = nIm === 1 ? im0 : im0 + ((im1 - im0) * j) / (nIm - 1);
      seeds.push(c(re, im));
    }
  }
  return seeds;
}

/**
 * The root of s + a·Ĝ(s) = 0, Ĝ(s) = mean_j exp(−s·D_j), with the largest real part (im ≥ 0).
 * Delays must be finite and ≥ 0; a any finite real. Identical delays are merged, so integer
 * staleness samples are cheap. See the file header for the accuracy and certificate.
 * `gains` (one per delay, in [0, 1]): the step factor each update was applied with
 * (staleness-policy.ts), Ĝ(s) = mean_j g_j·exp(−s·D_j).
 */
export function rightmostRoot(
  a: number,
  delays: DelaySample,
  gains?: DelaySample,
): CharacteristicRoot {
  if (!Number.isFinite(a)) throw new RangeError(`rightmostRoot: a = ${a} is not finite`);
  const dist = compress(delays, gains);
  if (dist.max === 0 || a === 0) {
    let total = 0;
    for (const w of dist.weights) total += w;
    return { re: -a * total, im: 0, iterations: 0, certified: true };
  }
  const tau = dist.mean;
  const scale = Math.max(Math.abs(a), 1 / tau);

  const seeds: Complex[] = [];
  for (const t of [tau, dist.max, dist.minPositive, dist.median]) {
    if (!(t > 0) || !Number.isFinite(t)) continue;
    for (const k of [0, 1, -1]) {
      const w = lambertW(k, -a * t);
      if (Number.isFinite(w.re) && Number.isFinite(w.im)) {
        seeds.push(c(w.re / t, Math.abs(w.im) / t));
      }
    }
  }
  const imMax = Math.max(1.2 * Math.abs(a), (1.5 * Math.PI) / tau);
  seeds.push(...grid(-2 * scale, Math.abs(a), 0, imMax, 9, 9));

  const roots: NewtonResult[] = [];
  if (dist.values.length > 256) {
    // Large sample: search on a 128-bin histogram, then polish on the exact sample.
    const coarse = coarsen(dist, 128);
    const found: NewtonResult[] = [];
    for (const seed of seeds) {
      const r = newton(a, coarse, seed, scale, found);
      if (r !== null) dedupeInsert(found, r, scale);
    }
    for (const f of found) {
      const r = newton(a, dist, f.s, scale, roots);
      if (r !== null)
        dedupeInsert(roots, { s: r.s, iterations: f.iterations + r.iterations }, scale);
    }
  } else {
    for (const seed of seeds) {
      const r = newton(a, dist, seed, scale, roots);
      if (r !== null) dedupeInsert(roots, r, scale);
    }
  }

  // Certification: no root right of best.re + margin. Every root with Re ≥ σ lies in
  // |s| ≤ |a|·E[e^{−σD}], so the rectangle [σ, B] × [−B, B] holds all of them.
  const budget = Math.max(2000, Math.floor(4e7 / dist.values.length));
  let certified = false;
  for (let round = 0; round < 4 && roots.length > 0; round++) {
    const best = pickRightmost(roots);
    const sigma = best.s.re + 1e-6 * scale;
    const ev = evaluate(1, dist, c(sigma, 0));
    if (ev === null) break;
    const bound = Math.abs(a) * ev.mag * (1 + 1e-6) + 1e-9 * scale;
    if (sigma >= bound) {
      certified = true;
      break;
    }
    const count = countRoots(a, dist, sigma, bound, bound, budget);
    if (count === null) break;
    if (count === 0) {
      certified = true;
      break;
    }
    // Missed roots: seed densely where they must be and try again.
    const extra = grid(sigma, bound, 0, bound, 24, 24);
    for (const seed of extra) {
      const r = newton(a, dist, seed, scale, roots);
      if (r !== null) dedupeInsert(roots, r, scale);
    }
  }
  if (roots.length === 0) {
    throw new Error(`rightmostRoot: Newton found no root (a=${a}, mean delay ${tau})`);
  }
  const best = pickRightmost(roots);
  return { re: best.s.re, im: best.s.im, iterations: best.iterations, certified };
}

function pickRightmost(roots: readonly NewtonResult[]): NewtonResult {
  let best = roots[0]!;
  for (const r of roots) if (r.s.re > best.s.re) best = r;
  return best;
}

/**
 * Every root found from the given seeds (im ≥ 0, deduplicated), each polished to the residual
 * tolerance. A diagnostic and test helper: `rightmostRoot` is the one to use.
 */
export function characteristicRoots(
  a: number,
  delays: DelaySample,
  seeds: readonly { re: number; im: number }[],
): { re: number; im: number }[] {
  const dist = compress(delays);
  const scale = Math.max(Math.abs(a), dist.mean > 0 ? 1 / dist.mean : 1);
  const roots: NewtonResult[] = [];
  for (const seed of seeds) {
    const r = newton(a, dist, c(seed.re, seed.im), scale);
    if (r !== null) dedupeInsert(roots, r, scale);
  }
  return roots.map((r) => ({ re: r.s.re, im: r.s.im }));
}

/** |s + a·Ĝ(s)| for a delay sample: the residual of the characteristic equation. */
export function characteristicResidual(
  a: number,
  delays: DelaySample,
  s: { re: number; im: number },
): number {
  const ev = evaluate(a, compress(delays), c(s.re, s.im));
  return ev === null ? Infinity : cabs(ev.f);
}

// ---------------------------------------------------------------------------------------------
// Scheduling: how many workers, which staleness threshold.

/**
 * The default delay model: a staleness sample (iterations) measured with n0 active workers
 * scales as D·(n/n0) with n workers — n times as many updates land between a read and its
 * write. In seconds (D / λ(n)) the delay then does not depend on n; what grows with n is the
 * damping a = η·h·n/E[T]·p and the share of updates dropped by the threshold.
 */
export function proportionalDelayModel(sample: DelaySample, sampleWorkers: number): DelayModel {
  if (!(sampleWorkers > 0)) throw new RangeError('sampleWorkers must be > 0');
  const base = Float64Array.from(sample);
  return (n) => base.map((d) => (d * n) / sampleWorkers);
}

export interface StalenessInput {
  /** η */
  learningRate: number;
  /** h: top eigenvalue of the Hessian (curvature along the stiffest direction) */
  curvature: number;
  /** E[T]: mean compute + communication time of one task, seconds */
  meanTaskTime: number;
  /**
   * Staleness in iterations (updates applied between a worker's read and its write): either
   * a sample measured with `sampleWorkers` active workers (scaled by `proportionalDelayModel`)
   * or a function giving the sample for n workers (e.g. measured per n by the coordinator).
   */
  delays: DelaySample | DelayModel;
  /** n0 for a measured sample; required when `delays` is a sample. */
  sampleWorkers?: number;
  /** Candidate numbers of active workers n (integers ≥ 1). */
  workerCounts: readonly number[];
  /** Candidate staleness thresholds S (iterations): updates with staleness > S are dropped. */
  thresholds: readonly number[];
  /**
   * The step factor an accepted update of this staleness (iterations) is applied with
   * (staleness-policy.ts `stalenessStepScale`); absent: every update in full.
   */
  stepScale?: ((delayIterations: number) => number) | undefined;
}

export interface StalenessPoint {
  workers: number;
  threshold: number;
  /** λ = n / E[T], updates per second */
  arrivalRate: number;
  /** p = P(D ≤ S) over the delay sample for n workers */
  acceptance: number;
  /** a = η·h·λ·p, per second */
  a: number;
  /** mean accepted staleness, iterations (0 when nothing is accepted) */
  meanDelayIterations: number;
  /** mean accepted delay in seconds, D_iter / λ */
  meanDelaySeconds: number;
  /** rightmost root of s + a·Ĝ(s) = 0 over the accepted delays in seconds */
  root: CharacteristicRoot;
  /** Re(root) < 0 */
  stable: boolean;
  /** −Re(root): convergence speed per second (≤ 0 when not converging) */
  rate: number;
}

/**
 * The rightmost characteristic root for every (n, S) candidate pair, workers-major order.
 * Delays are staleness in iterations; the DDE runs in seconds (see the file header).
 */
export function analyzeStaleness(input: StalenessInput): StalenessPoint[] {
  const { learningRate: eta, curvature: h, meanTaskTime: meanT } = input;
  if (!(eta > 0) || !Number.isFinite(eta)) throw new RangeError('learningRate must be > 0');
  if (!Number.isFinite(h)) throw new RangeError('curvature must be finite');
  if (!(meanT > 0) || !Number.isFinite(meanT)) throw new RangeError('meanTaskTime must be > 0');
  let model: DelayModel;
  if (typeof input.delays === 'function') model = input.delays;
  else {
    if (input.sampleWorkers === undefined) {
      throw new RangeError('sampleWorkers is required when delays is a sample');
    }
    model = proportionalDelayModel(input.delays, input.sampleWorkers);
  }
  const points: StalenessPoint[] = [];
  for (const n of input.workerCounts) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`worker count ${n} is not ≥ 1`);
    const sample = model(n);
    if (sample.length === 0) throw new RangeError(`empty delay sample for n=${n}`);
    const lambda = n / meanT;
    for (const S of input.thresholds) {
      if (!(S >= 0)) throw new RangeError(`threshold ${S} is not ≥ 0`);
      const accepted: number[] = [];
      const gains: number[] = [];
      let sumIt = 0;
      for (let j = 0; j < sample.length; j++) {
        const d = sample[j]!;
        if (!(d >= 0) || !Number.isFinite(d)) throw new RangeError(`delay ${d} is not ≥ 0`);
        if (d <= S) {
          accepted.push(d / lambda);
          gains.push(input.stepScale === undefined ? 1 : input.stepScale(d));
          sumIt += d;
        }
      }
      const p = accepted.length / sample.length;
      const a = eta * h * lambda * p;
      const root =
        accepted.length === 0
          ? { re: 0, im: 0, iterations: 0, certified: true }
          : rightmostRoot(a, accepted, input.stepScale === undefined ? undefined : gains);
      const meanIt = accepted.length === 0 ? 0 : sumIt / accepted.length;
      points.push({
        workers: n,
        threshold: S,
        arrivalRate: lambda,
        acceptance: p,
        a,
        meanDelayIterations: meanIt,
        meanDelaySeconds: meanIt / lambda,
        root,
        stable: root.re < 0,
        rate: -root.re,
      });
    }
  }
  return points;
}

export interface Recommendation {
  workers: number;
  threshold: number;
  /** −Re(root) per second of the chosen point */
  rate: number;
  stable: boolean;
  point: StalenessPoint;
  /** Human-readable: why this (n, S), and why more workers would not be faster. */
  reason: string;
}

const fmt = (x: number): string => {
  if (x === 0) return '0';
  const ax = Math.abs(x);
  if (ax >= 1e4 || ax < 1e-3) return x.toExponential(2);
  const t = x.toPrecision(3);
  return t.includes('.') && !t.includes('e') ? t.replace(/\.?0+$/, '') : t;
};

function describe(p: StalenessPoint): string {
  // Newton leaves a real root with a rounding-size imaginary part
  const osc =
    p.root.im > 1e-9 * Math.max(1, Math.abs(p.root.re))
      ? `, Im=${fmt(p.root.im)} (oscillating)`
      : '';
  return `Re(root)=${fmt(p.root.re)}${osc}, accepts ${fmt(100 * p.acceptance)}% of updates, a·τ̄=${fmt(p.a * p.meanDelaySeconds)}`;
}

/** Better point: stable beats unstable; then faster; ties go to fewer workers, then smaller S. */
function better(x: StalenessPoint, y: StalenessPoint): boolean {
  if (x.stable !== y.stable) return x.stable;
  const tol = 1e-9 * Math.max(Math.abs(x.rate), Math.abs(y.rate));
  if (Math.abs(x.rate - y.rate) > tol) return x.rate > y.rate;
  if (x.workers !== y.workers) return x.workers < y.workers;
  return x.threshold < y.threshold;
}

/**
 * The (n, S) with the fastest stable convergence (largest −Re(root)), with a reason that also
 * says why the next larger worker count is not chosen. When nothing is stable, the least
 * unstable point is returned with `stable: false` and advice to lower the learning rate or n.
 */
export function recommend(points: readonly StalenessPoint[]): Recommendation {
  if (points.length === 0) throw new RangeError('recommend: no candidate points');
  let best = points[0]!;
  for (const p of points) if (better(p, best)) best = p;
  const head = `n=${best.workers},S=${best.threshold}`;
  if (!best.stable) {
    return {
      workers: best.workers,
      threshold: best.threshold,
      rate: best.rate,
      stable: false,
      point: best,
      reason:
        `no (n, S) candidate converges; least unstable is ${head}: ${describe(best)}. ` +
        'Lower the learning rate or the number of workers.',
    };
  }
  const parts = [`${head}: rate ${fmt(best.rate)}/s (${describe(best)})`];
  // Best point of each larger worker count: the next one explains why we stop here.
  const larger = [...new Set(points.map((p) => p.workers))]
    .filter((n) => n > best.workers)
    .sort((x, y) => x - y);
  const next = larger[0];
  if (next === undefined) {
    parts.push(`n=${best.workers} is the largest candidate; more workers may still help`);
  } else {
    let nb: StalenessPoint | undefined;
    for (const p of points) if (p.workers === next && (nb === undefined || better(p, nb))) nb = p;
    const q = nb!;
    const qHead = `n=${q.workers} (best S=${q.threshold})`;
    if (q.acceptance === 0) {
      parts.push(`${qHead} accepts no update: staleness grows past every threshold`);
    } else if (!q.stable) {
      parts.push(
        `${qHead} diverges because staleness grows: ${describe(q)} (Re(root) ≥ 0 means no convergence)`,
      );
    } else if (q.rate >= best.rate) {
      parts.push(`${qHead} is no faster (rate ${fmt(q.rate)}/s), so fewer workers are used`);
    } else {
      parts.push(
        `${qHead} is slower because staleness grows: rate ${fmt(q.rate)}/s, ${describe(q)}`,
      );
    }
  }
  return {
    workers: best.workers,
    threshold: best.threshold,
    rate: best.rate,
    stable: true,
    point: best,
    reason: parts.join('; '),
  };
}
