import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  analyzeStaleness,
  characteristicResidual,
  characteristicRoots,
  fixedDelayRoot,
  isStableFixedDelay,
  lambertW,
  lambertW0,
  proportionalDelayModel,
  recommend,
  rightmostRoot,
} from '../src/sdde.ts';
import { createRng } from '../src/random.ts';
import { stalenessStepScale } from '../src/staleness-policy.ts';

const same = (tau: number, n = 5): number[] => Array.from({ length: n }, () => tau);

/** w·e^w − z */
function wResidual(w: { re: number; im: number }, z: { re: number; im: number }): number {
  const m = Math.exp(w.re);
  const er = m * Math.cos(w.im);
  const ei = m * Math.sin(w.im);
  return Math.hypot(w.re * er - w.im * ei - z.re, w.re * ei + w.im * er - z.im);
}

describe('lambertW0 / lambertW', () => {
  it('matches known values', () => {
    expect(lambertW0(1)).toBeCloseTo(0.5671432904097838, 15);
    expect(lambertW0(-1 / Math.E)).toBeCloseTo(-1, 7);
    expect(lambertW0(0)).toBe(0);
    expect(lambertW0(Math.E)).toBeCloseTo(1, 14);
    expect(lambertW0(100)).toBeCloseTo(3.38563014029005, 13);
    expect(lambertW0(-0.36787)).toBeCloseTo(-0.9928527298215277, 9);
    expect(() => lambertW0(-0.5)).toThrow(RangeError);
  });

  it('complex branches match reference values (mpmath)', () => {
    const cases: [number, { re: number; im: number } | number, number, number][] = [
      [0, -1, -0.31813150520476, 1.3372357014307],
      [-1, -1, -0.31813150520476, -1.3372357014307],
      [1, 1, -1.5339133197936, 4.3751851530619],
      [-1, -0.2, -2.5426413577735, 0],
      [0, { re: 2, im: 3 }, 1.0900765344858, 0.53013972077484],
      [-1, { re: -0.3, im: 0.01 }, -1.7821348043697, -0.075865092146684],
      [1, { re: -0.3, im: -0.01 }, -1.7821348043697, 0.075865092146684],
      [-1, { re: -0.37, im: 0.001 }, -1.0207047381704, -0.11179867541818],
      [0, -0.3679, -0.99996274453467, 0.010571923344495],
      [0, { re: -0.7, im: 0.3 }, -0.22558810347956, 0.92725487717395],
    ];
    for (const [k, z, re, im] of cases) {
      const w = lambertW(k, z);
      expect(w.re).toBeCloseTo(re, 9);
      expect(w.im).toBeCloseTo(im, 9);
    }
  });

  it('solves w·e^w = z on branches −1, 0, 1 over a grid of z', () => {
    for (let re = -4; re <= 4; re += 0.25) {
      for (let im = -4; im <= 4; im += 0.25) {
        for (const k of [-1, 0, 1]) {
          const z = { re, im };
          if (re === 0 && im === 0) continue;
          expect(wResidual(lambertW(k, z), z)).toBeLessThan(1e-12 * (1 + Math.hypot(re, im)));
        }
      }
    }
  });
});

describe('fixed delay closed form', () => {
  it('is the principal branch and stable iff aτ < π/2', () => {
    // aτ = π/2: s = iπ/(2τ) exactly on the imaginary axis
    const r = fixedDelayRoot(Math.PI / 2, 1);
    expect(Math.abs(r.re)).toBeLessThan(1e-12);
    expect(r.im).toBeCloseTo(Math.PI / 2, 12);
    expect(fixedDelayRoot(2, 0)).toMatchObject({ re: -2, im: 0 });
    expect(isStableFixedDelay(1, 1.5)).toBe(true);
    expect(isStableFixedDelay(1, 1.6)).toBe(false);
    expect(isStableFixedDelay(0, 1)).toBe(false);
    expect(isStableFixedDelay(-1, 0)).toBe(false);
    // residual of s + a e^{-sτ}
    for (const at of [0.05, 0.3, 1 / Math.E, 0.5, 1, 1.5, 2.5, 10]) {
      const s = fixedDelayRoot(at / 2, 2);
      expect(characteristicResidual(at / 2, [2], s)).toBeLessThan(1e-12);
    }
  });
});

describe('rightmostRoot', () => {
  it('with gains: a delay applied at factor g acts as a·g, and gains of 1 change nothing', () => {
    for (const [a, tau, g] of [
      [2, 1, 0.25],
      [5, 0.3, 0.5],
      [1, 2, 1],
    ] as const) {
      const got = rightmostRoot(a, same(tau), same(g));
      const want = fixedDelayRoot(a * g, tau);
      expect(Math.abs(got.re - want.re)).toBeLessThan(1e-6);
      expect(Math.abs(got.im - want.im)).toBeLessThan(1e-6);
    }
    const mixed = [0, 0.1, 0.1, 0.4, 1.2];
    const plain = rightmostRoot(3, mixed);
    const ones = rightmostRoot(
      3,
      mixed,
      mixed.map(() => 1),
    );
    expect(Math.abs(plain.re - ones.re)).toBeLessThan(1e-9);
    expect(Math.abs(plain.im - ones.im)).toBeLessThan(1e-9);
    // no delay at all: s = −a·E[g]
    expect(rightmostRoot(2, [0, 0], [1, 0.5]).re).toBeCloseTo(-1.5, 12);
    expect(() => rightmostRoot(1, [1], [1.5])).toThrow(RangeError);
    expect(() => rightmostRoot(1, [1, 2], [1])).toThrow(RangeError);
  });

  it('a step shrunk with the delay (staleness-policy.ts) turns a divergent threshold stable', () => {
    const input = {
      learningRate: 0.5,
      curvature: 4,
      meanTaskTime: 0.065,
      delays: [3, 3, 3, 3, 3],
      sampleWorkers: 5,
      workerCounts: [5],
      thresholds: [3],
    };
    const [plain] = analyzeStaleness(input);
    const [scaled] = analyzeStaleness({
      ...input,
      stepScale: (d: number) => stalenessStepScale(d, input.learningRate, input.curvature),
    });
    expect(plain!.stable).toBe(false);
    expect(scaled!.stable).toBe(true);
  });
  it('(1) identical delays match W0(−aτ)/τ within 1e-6', () => {
    for (const tau of [0.1, 0.5, 1, 2]) {
      for (let k = 1; k < 60; k++) {
        const at = (3 * k) / 60; // aτ in (0, 3)
        const a = at / tau;
        const got = rightmostRoot(a, same(tau));
        const want = fixedDelayRoot(a, tau);
        expect(Math.abs(got.re - want.re)).toBeLessThan(1e-6);
        expect(Math.abs(got.im - want.im)).toBeLessThan(1e-6);
        expect(got.im).toBeGreaterThanOrEqual(0);
      }
    }
    // near the double root aτ = 1/e, from both sides
    for (const at of [1 / Math.E - 1e-9, 1 / Math.E, 1 / Math.E + 1e-9]) {
      const got = rightmostRoot(at, same(1));
      const want = fixedDelayRoot(at, 1);
      expect(Math.abs(got.re - want.re)).toBeLessThan(1e-6);
      expect(Math.abs(got.im - want.im)).toBeLessThan(1e-6);
    }
  });

  it('(2) the stability boundary sits at aτ = π/2', () => {
    for (const tau of [0.1, 0.5, 1, 2]) {
      const below = rightmostRoot(((Math.PI / 2) * (1 - 1e-4)) / tau, same(tau));
      const above = rightmostRoot(((Math.PI / 2) * (1 + 1e-4)) / tau, same(tau));
      expect(below.re).toBeLessThan(0);
      expect(above.re).toBeGreaterThan(0);
      // it crosses with frequency π/(2τ)
      expect(below.im).toBeCloseTo(Math.PI / (2 * tau), 3);
    }
  });

  it('(3) property: random a, τ give the closed-form root', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -3, max: 5, noNaN: true }),
        fc.double({ min: 0.01, max: 10, noNaN: true }),
        (at, tau) => {
          const a = at / tau;
          const got = rightmostRoot(a, [tau, tau, tau]);
          const want = fixedDelayRoot(a, tau);
          const tol = 1e-6 * Math.max(1, Math.abs(want.re), want.im);
          return Math.abs(got.re - want.re) < tol && Math.abs(got.im - want.im) < tol;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('(4) delay mixture: residual < 1e-9 and nothing to its right from a dense grid', () => {
    const rng = createRng(7);
    const mixtures: number[][] = [
      [0.2, 0.5, 0.5, 1, 1.7, 3],
      [0, 0, 1, 1, 1, 4], // some updates with no delay at all
      Array.from({ length: 200 }, () => (rng.next() < 0.7 ? 0.3 : 2) + 0.2 * rng.next()),
      Array.from({ length: 600 }, () => -Math.log(1 - rng.next())), // exponential, binned path
    ];
    for (const delays of mixtures) {
      for (const a of delays.length > 300 ? [0.8, 3] : [0.2, 0.8, 1.5, 3, -0.5]) {
        const root = rightmostRoot(a, delays);
        expect(characteristicResidual(a, delays, root)).toBeLessThan(1e-9);
        expect(root.im).toBeGreaterThanOrEqual(0);
        expect(root.certified).toBe(true);
        const seeds = [];
        for (let i = 0; i <= 30; i++) {
          for (let j = 0; j <= 30; j++) seeds.push({ re: -6 + (i * 9) / 30, im: (j * 25) / 30 });
        }
        const all = characteristicRoots(a, delays, seeds);
        expect(all.length).toBeGreaterThan(0);
        for (const s of all) {
          expect(characteristicResidual(a, delays, s)).toBeLessThan(1e-9);
          expect(s.re).toBeLessThanOrEqual(root.re + 1e-9);
        }
      }
    }
  });

  it('finds the rightmost of many roots crowding the imaginary axis', () => {
    // s + 10 + 10·e^{−10s}: ~1 root per 0.63 of Im, real parts all close to 0
    const delays = [0, 10];
    const root = rightmostRoot(20, delays);
    expect(root.certified).toBe(true);
    expect(characteristicResidual(20, delays, root)).toBeLessThan(1e-12);
    const seeds = [];
    for (let i = 0; i <= 100; i++) {
      for (let j = 0; j <= 100; j++) seeds.push({ re: -30 + (i * 60) / 100, im: (j * 60) / 100 });
    }
    const all = characteristicRoots(20, delays, seeds);
    expect(all.length).toBeGreaterThan(50);
    const rightmost = Math.max(...all.map((s) => s.re));
    expect(root.re).toBeCloseTo(rightmost, 10);
    expect(root.re).toBeLessThan(0); // stable, barely
  });

  it('handles zero delays, a = 0 and rejects bad samples', () => {
    expect(rightmostRoot(2.5, [0, 0, 0])).toMatchObject({ re: -2.5, im: 0 });
    expect(rightmostRoot(0, [1, 2])).toMatchObject({ re: -0, im: 0 });
    expect(() => rightmostRoot(1, [])).toThrow(RangeError);
    expect(() => rightmostRoot(1, [1, -1])).toThrow(RangeError);
    expect(() => rightmostRoot(1, [1, NaN])).toThrow(RangeError);
    expect(() => rightmostRoot(Infinity, [1])).toThrow(RangeError);
  });

  it('accepts a Float64Array sample and merges identical delays', () => {
    const d = new Float64Array([1, 1, 2, 2, 2, 5]);
    const r = rightmostRoot(0.7, d);
    expect(characteristicResidual(0.7, d, r)).toBeLessThan(1e-12);
    // same distribution, different order and multiplicity scale
    const r2 = rightmostRoot(0.7, [2, 5, 1, 2, 1, 2, 2, 5, 1, 2, 1, 2]);
    expect(r2.re).toBeCloseTo(r.re, 10);
    expect(r2.im).toBeCloseTo(r.im, 10);
  });
});

describe('analyzeStaleness / recommend', () => {
  const base = {
    learningRate: 0.05,
    curvature: 1,
    meanTaskTime: 1,
    delays: [2, 3, 3, 4, 4, 5, 6],
    sampleWorkers: 4,
  };

  it('uses iterations for S and seconds (D/λ) in the DDE', () => {
    const pts = analyzeStaleness({
      ...base,
      delays: [3, 3, 3, 3],
      workerCounts: [4, 8],
      thresholds: [5, 100],
    });
    expect(pts.map((p) => [p.workers, p.threshold])).toEqual([
      [4, 5],
      [4, 100],
      [8, 5],
      [8, 100],
    ]);
    const [p4, , p8small, p8] = pts as [
      (typeof pts)[0],
      (typeof pts)[0],
      (typeof pts)[0],
      (typeof pts)[0],
    ];
    // n = 4: λ = 4/s, staleness 3 iterations = 0.75 s, a = 0.05·1·4·1
    expect(p4.arrivalRate).toBe(4);
    expect(p4.acceptance).toBe(1);
    expect(p4.a).toBeCloseTo(0.2, 12);
    expect(p4.meanDelaySeconds).toBeCloseTo(0.75, 12);
    const closed = fixedDelayRoot(0.2, 0.75);
    expect(p4.root.re).toBeCloseTo(closed.re, 8);
    expect(p4.rate).toBeCloseTo(-closed.re, 8);
    expect(p4.stable).toBe(true);
    // n = 8: staleness doubles to 6 iterations > S = 5: everything dropped, no progress
    expect(p8small.acceptance).toBe(0);
    expect(p8small.a).toBe(0);
    expect(p8small.stable).toBe(false);
    // with S = 100: same delay in seconds, twice the damping
    expect(p8.meanDelayIterations).toBe(6);
    expect(p8.meanDelaySeconds).toBeCloseTo(0.75, 12);
    expect(p8.a).toBeCloseTo(0.4, 12);
  });

  it('takes a per-n delay model', () => {
    const seen: number[] = [];
    const pts = analyzeStaleness({
      ...base,
      delays: (n) => {
        seen.push(n);
        return [n, n + 1];
      },
      sampleWorkers: undefined,
      workerCounts: [2, 3],
      thresholds: [2],
    });
    expect(seen).toEqual([2, 3]);
    expect(pts[0]!.acceptance).toBe(0.5);
    expect(pts[1]!.acceptance).toBe(0);
    expect(() =>
      analyzeStaleness({ ...base, sampleWorkers: undefined, workerCounts: [1], thresholds: [1] }),
    ).toThrow(RangeError);
    expect(proportionalDelayModel([1, 2], 4)(8)).toEqual(new Float64Array([2, 4]));
  });

  it('(5) more workers can be slower: recommends the middle and says why', () => {
    const pts = analyzeStaleness({
      ...base,
      workerCounts: [2, 4, 8, 16, 32, 64],
      thresholds: [1000],
    });
    const rate = (n: number) => pts.find((p) => p.workers === n)!.rate;
    // rate rises with n while staleness is small, then falls, then diverges
    expect(rate(4)).toBeGreaterThan(rate(2));
    expect(rate(8)).toBeGreaterThan(rate(4));
    expect(rate(16)).toBeLessThan(rate(8));
    expect(rate(32)).toBeLessThan(rate(16));
    expect(pts.find((p) => p.workers === 64)!.stable).toBe(false);
    const rec = recommend(pts);
    expect(rec.workers).toBe(8);
    expect(rec.threshold).toBe(1000);
    expect(rec.stable).toBe(true);
    expect(rec.rate).toBeCloseTo(rate(8), 12);
    expect(rec.reason).toMatch(/^n=8,S=1000: rate 0\.89\d*\/s/);
    expect(rec.reason).toMatch(/n=16 \(best S=1000\) is slower because staleness grows/);
  });

  it('(5b) picks the threshold too and reports divergence of the next n', () => {
    const pts = analyzeStaleness({
      ...base,
      learningRate: 0.1,
      workerCounts: [4, 16],
      thresholds: [4, 8, 1000],
    });
    const rec = recommend(pts);
    const best = Math.max(...pts.filter((p) => p.stable).map((p) => p.rate));
    expect(rec.rate).toBe(best);
    for (const p of pts) if (p.stable) expect(p.rate).toBeLessThanOrEqual(rec.rate);
    expect(rec.reason).toContain(`n=${rec.workers},S=${rec.threshold}`);
  });

  it('reports when nothing is stable', () => {
    const pts = analyzeStaleness({
      ...base,
      learningRate: 5,
      workerCounts: [4, 8],
      thresholds: [1000],
    });
    expect(pts.every((p) => !p.stable)).toBe(true);
    const rec = recommend(pts);
    expect(rec.stable).toBe(false);
    expect(rec.workers).toBe(4); // least unstable
    expect(rec.reason).toMatch(/no \(n, S\) candidate converges/);
    expect(() => recommend([])).toThrow(RangeError);
  });
});
