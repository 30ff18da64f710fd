import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  elasticStep,
  entropyInnerStep,
  entropyOuterStep,
  runLocalSteps,
  updateRunningMean,
  type LocalMode,
} from '../src/parle.ts';
import { createRng } from '../src/random.ts';
import { allFinite, l2Norm, squaredDistance } from '../src/vector.ts';

const f32 = (xs: readonly number[]): Float32Array => Float32Array.from(xs);

/** ∇ of ½·Σ h_i (x_i − c_i)² */
const quadratic =
  (c: Float32Array, h?: Float32Array) =>
  (x: Float32Array): Float32Array => {
    const g = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) g[i] = (h?.[i] ?? 1) * (x[i]! - c[i]!);
    return g;
  };

const vec = (d: number, lim = 10) =>
  fc
    .array(fc.float({ min: -lim, max: lim, noNaN: true, noDefaultInfinity: true }), {
      minLength: d,
      maxLength: d,
    })
    .map(f32);

describe('elasticStep', () => {
  it('is x − η(g + γ(x − x̃)) in place', () => {
    const x = f32([1, 2, 3]);
    const out = elasticStep(x, f32([0.5, -1, 0]), f32([0, 2, 4]), {
      learningRate: 0.1,
      elastic: 2,
    });
    expect(out).toBe(x);
    expect(x[0]).toBeCloseTo(1 - 0.1 * (0.5 + 2 * 1), 6);
    expect(x[1]).toBeCloseTo(2 - 0.1 * -1, 6);
    expect(x[2]).toBeCloseTo(3 - 0.1 * (2 * -1), 6);
  });

  it('heavy ball and Nesterov momentum follow their recurrences', () => {
    const g = f32([1]);
    const anchor = f32([0]);
    const hb = f32([0]);
    const vHb = new Float32Array(1);
    const nag = f32([0]);
    const vNag = new Float32Array(1);
    for (let k = 0; k < 3; k++) {
      elasticStep(hb, g, anchor, { learningRate: 1, elastic: 0, momentum: 0.5, velocity: vHb });
      elasticStep(nag, g, anchor, {
        learningRate: 1,
        elastic: 0,
        momentum: 0.5,
        velocity: vNag,
        nesterov: true,
      });
    }
    // v: 1, 1.5, 1.75 → heavy ball x = −(1 + 1.5 + 1.75)
    expect(hb[0]).toBeCloseTo(-4.25, 6);
    // Nesterov steps d + μv: 1.5, 1.75, 1.875
    expect(nag[0]).toBeCloseTo(-5.125, 6);
    expect(() =>
      elasticStep(f32([0]), g, anchor, { learningRate: 1, elastic: 0, momentum: 0.5 }),
    ).toThrow(RangeError);
    expect(() => elasticStep(f32([0, 1]), g, anchor, { learningRate: 1, elastic: 0 })).toThrow(
      RangeError,
    );
  });
});

describe('entropy steps', () => {
  it('inner step, running mean and outer step follow their formulas', () => {
    const y = f32([1, 1]);
    entropyInnerStep(y, f32([2, 0]), f32([0, 3]), { learningRate: 0.5, scoping: 1 });
    expect(Array.from(y)).toEqual([1 - 0.5 * (2 + 1), 1 - 0.5 * (0 - 2)]);
    const mu = f32([0, 0]);
    updateRunningMean(mu, f32([4, 8]), 0.75);
    expect(Array.from(mu)).toEqual([3, 6]);
    const x = f32([1, 1]);
    entropyOuterStep(x, f32([0, 2]), {
      learningRate: 0.5,
      scoping: 2,
      elastic: 1,
      anchor: f32([1, 0]),
    });
    // x − η(γ'(x − μ) + γ(x − x̃))
    expect(Array.from(x)).toEqual([1 - 0.5 * (2 * 1 + 0), 1 - 0.5 * (2 * -1 + 1)]);
  });

  it('noise is seeded and scaled by √η′', () => {
    const run = (seed: number, noise: number) => {
      const y = new Float32Array(2000);
      entropyInnerStep(y, new Float32Array(2000), new Float32Array(2000), {
        learningRate: 0.04,
        scoping: 1,
        noise,
        rng: createRng(seed),
      });
      return y;
    };
    expect(run(3, 0.5)).toEqual(run(3, 0.5));
    expect(run(3, 0.5)).not.toEqual(run(4, 0.5));
    // std ≈ √0.04 · 0.5 = 0.1
    const std = l2Norm(run(5, 0.5)) / Math.sqrt(2000);
    expect(std).toBeGreaterThan(0.09);
    expect(std).toBeLessThan(0.11);
    expect(() =>
      entropyInnerStep(f32([0]), f32([0]), f32([0]), { learningRate: 1, scoping: 1, noise: 1 }),
    ).toThrow(RangeError);
  });
});

describe('runLocalSteps', () => {
  it('L = 1, γ = 0 is exactly one SGD step', () => {
    fc.assert(
      fc.property(vec(8), vec(8), fc.double({ min: 1e-4, max: 1, noNaN: true }), (x0, g, eta) => {
        const params = x0.slice();
        const seen: number[] = [];
        const u = runLocalSteps({
          params,
          anchor: x0,
          steps: 1,
          gradient: (x, step) => {
            seen.push(step);
            expect(Array.from(x)).toEqual(Array.from(x0)); // evaluated at x̃
            return g;
          },
          learningRate: eta,
          mode: 'sgd',
        });
        expect(seen).toEqual([0]);
        for (let i = 0; i < 8; i++) {
          const x1 = Math.fround(x0[i]! - eta * g[i]!);
          // `+ 0` folds −0 into +0: the sign of a zero is not part of the contract (x0 = g = −0)
          expect(params[i]! + 0).toBe(x1 + 0);
          expect(u[i]! + 0).toBe(Math.fround(x1 - x0[i]!) + 0);
        }
        // elastic-sgd with any γ is the same at L = 1 (x starts at x̃)
        const u2 = runLocalSteps({
          params: x0.slice(),
          anchor: x0,
          steps: 1,
          gradient: () => g,
          learningRate: eta,
          elastic: 0.7,
          mode: 'elastic-sgd',
        });
        expect(u2).toEqual(u);
      }),
    );
  });

  it('γ = 0 on ½‖x − c‖² contracts geometrically: u = (1 − (1 − η)^L)(c − x̃)', () => {
    fc.assert(
      fc.property(
        vec(6),
        vec(6),
        fc.double({ min: 0.01, max: 1.5, noNaN: true }),
        fc.integer({ min: 1, max: 40 }),
        (anchor, c, eta, L) => {
          const u = runLocalSteps({
            params: anchor.slice(),
            anchor,
            steps: L,
            gradient: quadratic(c),
            learningRate: eta,
            mode: 'sgd',
          });
          const k = 1 - Math.pow(1 - eta, L);
          for (let i = 0; i < 6; i++) {
            const want = k * (c[i]! - anchor[i]!);
            // the iterate lives in float32: each step rounds at the scale of x (up to
            // max(|x̃|, |c|)), not of c − x̃, so the error bound scales with both
            const scale = 1 + Math.abs(c[i]!) + Math.abs(anchor[i]!);
            expect(Math.abs(u[i]! - want)).toBeLessThan(1e-5 * scale);
          }
        },
      ),
    );
  });

  it('γ > 0 keeps the local iterate closer to x̃ than γ = 0', () => {
    fc.assert(
      fc.property(
        vec(5),
        vec(5),
        fc.array(fc.double({ min: 0.1, max: 2, noNaN: true }), { minLength: 5, maxLength: 5 }),
        fc.double({ min: 0.01, max: 1, noNaN: true }),
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        fc.integer({ min: 2, max: 30 }),
        (anchor, c, hs, gamma, etaFrac, L) => {
          const h = f32(hs);
          const eta = etaFrac / (Math.max(...h) + gamma); // η(h + γ) ≤ 1
          const run = (mode: LocalMode, elastic: number) =>
            runLocalSteps({
              params: anchor.slice(),
              anchor,
              steps: L,
              gradient: quadratic(c, h),
              learningRate: eta,
              elastic,
              mode,
            });
          const free = l2Norm(run('sgd', 0));
          const pulled = l2Norm(run('elastic-sgd', gamma));
          expect(pulled).toBeLessThanOrEqual(free * (1 + 1e-6) + 1e-6);
          if (free > 1e-2) expect(pulled).toBeLessThan(free);
        },
      ),
    );
  });

  it('entropy-sgd on a quadratic converges toward c', () => {
    const c = f32([3, -2, 0.5, 10]);
    const anchor = new Float32Array(4);
    const dist0 = Math.sqrt(squaredDistance(anchor, c));
    let evaluations = 0;
    const params = anchor.slice();
    const u = runLocalSteps({
      params,
      anchor,
      steps: 200,
      gradient: (x, step) => {
        expect(step).toBe(evaluations++);
        return quadratic(c)(x);
      },
      learningRate: 0.5,
      mode: 'entropy-sgd',
      entropy: { scoping: 1, innerSteps: 5, learningRate: 0.2 },
    });
    expect(evaluations).toBe(200 * 5);
    expect(Math.sqrt(squaredDistance(params, c))).toBeLessThan(1e-3 * dist0);
    for (let i = 0; i < 4; i++) expect(u[i]).toBeCloseTo(params[i]! - anchor[i]!, 6);

    // with Langevin noise (seeded) it still gets close
    const noisy = anchor.slice();
    runLocalSteps({
      params: noisy,
      anchor,
      steps: 200,
      gradient: quadratic(c),
      learningRate: 0.5,
      mode: 'entropy-sgd',
      entropy: { scoping: 1, innerSteps: 5, learningRate: 0.2, noise: 0.01, rng: createRng(1) },
    });
    expect(Math.sqrt(squaredDistance(noisy, c))).toBeLessThan(0.05 * dist0);

    // Parle: an elastic pull keeps it between x̃ and c, closer to x̃ than without
    const parle = anchor.slice();
    runLocalSteps({
      params: parle,
      anchor,
      steps: 200,
      gradient: quadratic(c),
      learningRate: 0.5,
      elastic: 1,
      mode: 'entropy-sgd',
      entropy: { scoping: 1, innerSteps: 5, learningRate: 0.2 },
    });
    const d = Math.sqrt(squaredDistance(parle, c));
    expect(d).toBeGreaterThan(0.1 * dist0);
    expect(d).toBeLessThan(dist0);
  });

  it('produces no NaN for finite inputs in any mode', () => {
    fc.assert(
      fc.property(
        vec(7, 1e3),
        vec(7, 1e3),
        fc.constantFrom<LocalMode>('sgd', 'elastic-sgd', 'entropy-sgd'),
        fc.double({ min: 1e-4, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 10 }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        (anchor, c, mode, eta, gamma, L, momentum) => {
          const params = anchor.slice();
          const u = runLocalSteps({
            params,
            anchor,
            steps: L,
            gradient: quadratic(c),
            learningRate: eta,
            elastic: mode === 'sgd' ? 0 : gamma,
            mode,
            momentum,
            entropy: { scoping: 0.5, innerSteps: 3, noise: 0.1, rng: createRng(L) },
          });
          return allFinite(u) && allFinite(params);
        },
      ),
    );
  });

  it('rejects bad configuration and bad gradients', () => {
    const base = {
      params: f32([0, 0]),
      anchor: f32([0, 0]),
      steps: 2,
      gradient: () => f32([1, 1]),
      learningRate: 0.1,
    };
    expect(() => runLocalSteps({ ...base, mode: 'sgd', elastic: 0.5 })).toThrow(RangeError);
    expect(() => runLocalSteps({ ...base, mode: 'entropy-sgd' })).toThrow(RangeError);
    expect(() => runLocalSteps({ ...base, mode: 'sgd', steps: 0 })).toThrow(RangeError);
    expect(() => runLocalSteps({ ...base, mode: 'sgd', learningRate: 0 })).toThrow(RangeError);
    expect(() => runLocalSteps({ ...base, mode: 'sgd', gradient: () => f32([NaN, 0]) })).toThrow(
      /not finite/,
    );
    expect(() => runLocalSteps({ ...base, mode: 'sgd', gradient: () => f32([1]) })).toThrow(
      /length/,
    );
  });
});
