import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  AGREEMENT_ESTIMATORS,
  AgreementCoordinator,
  ClusterAgreement,
  agreementRounds,
  agreementRoundsFor,
  agreementStepInto,
  averageProposals,
  majorityOf,
  midpointInto,
  quorumOf,
} from '../src/agreement.ts';
import type { AgreementEstimator, AgreementMessage } from '../src/agreement.ts';
import { createRng, gaussian } from '../src/random.ts';
import type { Rng } from '../src/random.ts';
import { maxSpread } from '../src/vector.ts';

// ---------------------------------------------------------------------------------------------
// Helpers

function randInt(rng: Rng, n: number): number {
  return Math.floor(rng.next() * n);
}

function shuffle<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = randInt(rng, i + 1);
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

function maxAbs(vectors: readonly Float32Array[]): number {
  let m = 0;
  for (const v of vectors) for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}

/**
 * An upper bound on one float32 ulp of the largest magnitude (2^-149 for subnormals): the
 * rounding slack a midpoint round may add to the spread.
 */
function ulpSlack(initials: readonly Float32Array[]): number {
  return Math.max(maxAbs(initials) * 2 ** -23, 2 ** -149);
}

function expectInBox(values: readonly Float32Array[], initials: readonly Float32Array[]): void {
  const d = initials[0]!.length;
  for (let i = 0; i < d; i++) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of initials) {
      lo = Math.min(lo, v[i]!);
      hi = Math.max(hi, v[i]!);
    }
    for (const v of values) {
      expect(v[i]!).toBeGreaterThanOrEqual(lo);
      expect(v[i]!).toBeLessThanOrEqual(hi);
    }
  }
}

const coordinate = fc.float({ min: -100, max: 100, noNaN: true });

/** k in 1..9 clusters, d in 1..5 coordinates, ε relative to the initial spread. */
const instance = fc
  .record({ k: fc.integer({ min: 1, max: 9 }), d: fc.integer({ min: 1, max: 5 }) })
  .chain(({ k, d }) =>
    fc.record({
      k: fc.constant(k),
      initials: fc.array(fc.array(coordinate, { minLength: d, maxLength: d }), {
        minLength: k,
        maxLength: k,
      }),
      epsFactor: fc.double({ min: 1 / 4096, max: 1.5, noNaN: true }),
      seed: fc.integer(),
      estimator: fc.constantFrom(...AGREEMENT_ESTIMATORS),
    }),
  )
  .map(({ k, initials, epsFactor, seed, estimator }) => {
    const vs = initials.map((v) => Float32Array.from(v));
    const spread = maxSpread(vs);
    const epsilon = spread > 0 ? spread * epsFactor : 1e-3;
    const rounds = agreementRoundsFor(estimator, spread, epsilon);
    return { k, initials: vs, spread, epsilon, rounds, seed, estimator };
  });

interface SimOutcome {
  clusters: ClusterAgreement[];
  /** history[c][r] = cluster c's round-r value (r = R: its output). */
  history: Float32Array[][];
  deliveries: number;
}

/**
 * Message-passing execution under a random scheduler: every pending message is delivered one at
 * a time in random order. A cluster c in `budgets` crashes after sending budgets[c] messages
 * (each broadcast goes to recipients in random order, so a crash can cut a broadcast short); a
 * crashed cluster receives nothing more. Runs until no message is pending.
 */
function simulate(
  initials: readonly Float32Array[],
  rounds: number,
  budgets: ReadonlyMap<number, number>,
  rng: Rng,
  estimator?: AgreementEstimator,
): SimOutcome {
  const k = initials.length;
  const clusters = initials.map(
    (initial, clusterId) =>
      new ClusterAgreement({ clusterId, clusterCount: k, rounds, initial, estimator }),
  );
  const history: Float32Array[][] = clusters.map(() => []);
  const sent = new Array<number>(k).fill(0);
  const pending: { to: number; from: number; msg: AgreementMessage }[] = [];
  const alive = (c: number): boolean => sent[c]! < (budgets.get(c) ?? Infinity);

  const flush = (c: number): void => {
    for (const msg of clusters[c]!.takeOutgoing()) {
      expect(msg.round).toBe(history[c]!.length);
      history[c]!.push(msg.value);
      const others = shuffle(
        rng,
        [...Array(k).keys()].filter((x) => x !== c),
      );
      for (const to of others) {
        if (!alive(c)) break;
        sent[c]!++;
        pending.push({ to, from: c, msg });
      }
    }
    const cl = clusters[c]!;
    if (cl.done && history[c]!.length === rounds) history[c]!.push(cl.value);
  };

  for (let c = 0; c < k; c++) flush(c);
  let deliveries = 0;
  while (pending.length > 0) {
    const i = randInt(rng, pending.length);
    const { to, from, msg } = pending[i]!;
    pending[i] = pending[pending.length - 1]!;
    pending.pop();
    // A cluster that has exhausted its budget has crashed: it no longer takes steps.
    if (budgets.has(to) && !alive(to)) continue;
    deliveries++;
    const res = clusters[to]!.receive({ from, round: msg.round, value: msg.value });
    if (!res.accepted) expect(res.reason).toBe('stale-round');
    flush(to);
  }
  return { clusters, history, deliveries };
}

/**
 * Every contraction round at least halves the spread (up to rounding); the estimate round of
 * 'trimmed-mean' (round 0 → 1) only must not widen it.
 */
function checkContraction(
  history: readonly Float32Array[][],
  rounds: number,
  slack: number,
  estimator: AgreementEstimator = 'midpoint',
) {
  for (let r = 0; r < rounds; r++) {
    const now = history.map((h) => h[r]).filter((v): v is Float32Array => v !== undefined);
    const next = history.map((h) => h[r + 1]).filter((v): v is Float32Array => v !== undefined);
    if (next.length === 0) continue;
    const factor = estimator === 'trimmed-mean' && r === 0 ? 1 : 2;
    expect(maxSpread(next)).toBeLessThanOrEqual(maxSpread(now) / factor + slack);
  }
}

// ---------------------------------------------------------------------------------------------

describe('agreementRounds', () => {
  it('is ⌈log2(D/ε)⌉, and 0 when D ≤ ε', () => {
    expect(agreementRounds(8, 1)).toBe(3);
    expect(agreementRounds(9, 1)).toBe(4);
    expect(agreementRounds(1, 1)).toBe(0);
    expect(agreementRounds(0.5, 1)).toBe(0);
    expect(agreementRounds(0, 1e-6)).toBe(0);
    expect(agreementRounds(1, 2 ** -20)).toBe(20);
  });

  it('rejects non-finite or non-positive inputs', () => {
    expect(() => agreementRounds(Infinity, 1)).toThrow(RangeError);
    expect(() => agreementRounds(NaN, 1)).toThrow(RangeError);
    expect(() => agreementRounds(1, 0)).toThrow(RangeError);
    expect(() => agreementRounds(1, -1)).toThrow(RangeError);
    expect(() => agreementRounds(1, NaN)).toThrow(RangeError);
    expect(() => agreementRounds(1, Infinity)).toThrow(RangeError);
  });

  it('is the least R with D / 2^R ≤ ε', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-9, max: 1e3, noNaN: true }),
        (spread, epsilon) => {
          const r = agreementRounds(spread, epsilon);
          expect(spread / 2 ** r).toBeLessThanOrEqual(epsilon);
          if (r > 0) expect(spread / 2 ** (r - 1)).toBeGreaterThan(epsilon);
        },
      ),
    );
  });
});

describe('midpointInto / averageProposals', () => {
  it('midpoint is (min + max) / 2 per coordinate', () => {
    const out = midpointInto(new Float32Array(2), [
      Float32Array.of(0, 5),
      Float32Array.of(4, -1),
      Float32Array.of(1, 1),
    ]);
    expect([...out]).toEqual([2, 2]);
  });

  it('average is the mean of whatever proposals arrived (any number missing)', () => {
    expect([
      ...averageProposals([Float32Array.of(1, 2), Float32Array.of(3, 6), Float32Array.of(2, 1)]),
    ]).toEqual([2, 3]);
    fc.assert(
      fc.property(
        fc.array(fc.array(coordinate, { minLength: 3, maxLength: 3 }), {
          minLength: 1,
          maxLength: 9,
        }),
        (raw) => {
          const vs = raw.map((v) => Float32Array.from(v));
          const mean = averageProposals(vs);
          for (let i = 0; i < 3; i++) {
            const exact = vs.reduce((s, v) => s + v[i]!, 0) / vs.length;
            expect(mean[i]!).toBeCloseTo(exact, 4);
          }
          expectInBox([mean], vs);
        },
      ),
    );
    expect(() => averageProposals([])).toThrow(RangeError);
    expect(() => averageProposals([new Float32Array(2), new Float32Array(3)])).toThrow(RangeError);
  });
});

describe('ClusterAgreement', () => {
  const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

  it('rejects bad messages with a reason and buffers future rounds', () => {
    const a = new ClusterAgreement({
      clusterId: 0,
      clusterCount: 5,
      rounds: 3,
      initial: v(0, 0),
      estimator: 'midpoint',
    });
    expect(a.majority).toBe(3);
    expect(a.quorum).toBe(3);
    expect(a.outgoing()).toEqual({ round: 0, value: v(0, 0) });
    expect(a.receive({ from: 7, round: 0, value: v(1, 1) })).toEqual({
      accepted: false,
      reason: 'unknown-cluster',
    });
    expect(a.receive({ from: 0, round: 0, value: v(1, 1) })).toMatchObject({ reason: 'self' });
    expect(a.receive({ from: 1, round: 3, value: v(1, 1) })).toMatchObject({
      reason: 'invalid-round',
    });
    expect(a.receive({ from: 1, round: 0.5, value: v(1, 1) })).toMatchObject({
      reason: 'invalid-round',
    });
    expect(a.receive({ from: 1, round: 0, value: v(1) })).toMatchObject({
      reason: 'wrong-length',
    });
    expect(a.receive({ from: 1, round: 0, value: v(NaN, 1) })).toMatchObject({
      reason: 'non-finite',
    });
    expect(a.receive({ from: 1, round: 0, value: v(Infinity, 1) })).toMatchObject({
      reason: 'non-finite',
    });
    expect(a.receive({ from: 1, round: 0, value: v(4, 4) })).toEqual({
      accepted: true,
      round: 0,
      done: false,
    });
    expect(a.receive({ from: 1, round: 0, value: v(9, 9) })).toMatchObject({
      reason: 'duplicate',
    });
    // Future round: buffered, does not count for round 0.
    expect(a.receive({ from: 3, round: 1, value: v(1, 1) })).toMatchObject({ accepted: true });
    expect(a.round).toBe(0);
    expect(a.heldFrom(0)).toEqual([0, 1]);
    expect(a.heldFrom(1)).toEqual([3]);
    // Third round-0 value: majority {0,1,2} → midpoint of 0, 4, 2 per coordinate = 2.
    expect(a.receive({ from: 2, round: 0, value: v(2, -2) })).toMatchObject({ round: 1 });
    expect([...a.value]).toEqual([2, 1]);
    expect(a.heldFrom(0)).toEqual([0, 1, 2]);
    expect(a.heldFrom(1)).toEqual([0, 3]);
    expect(a.receive({ from: 4, round: 0, value: v(0, 0) })).toMatchObject({
      reason: 'stale-round',
    });
    // A value that arrives late for the wrong round does not corrupt the state.
    expect(a.done).toBe(false);
  });

  it('does not mutate or alias caller buffers', () => {
    const init = v(1, 2);
    const a = new ClusterAgreement({ clusterId: 0, clusterCount: 3, rounds: 1, initial: init });
    init[0] = 100;
    const msg = { from: 1, round: 0, value: v(3, 4) };
    a.receive(msg);
    msg.value[0] = -100;
    expect([...a.value]).toEqual([2, 3]);
    expect(a.done).toBe(true);
  });

  it('k = 1 and R = 0 are done at once, with the input as output', () => {
    const one = new ClusterAgreement({ clusterId: 0, clusterCount: 1, rounds: 5, initial: v(3) });
    expect(one.done).toBe(true);
    expect([...one.value]).toEqual([3]);
    expect(one.outgoing()).toBeUndefined();
    const zero = new ClusterAgreement({ clusterId: 1, clusterCount: 4, rounds: 0, initial: v(7) });
    expect(zero.done).toBe(true);
    expect(zero.takeOutgoing()).toEqual([]);
  });

  it('after a multi-round jump, queues every skipped round value for broadcast', () => {
    // k = 5: A receives B's and C's round-1 values before its round 0 completes, then jumps
    // 0 → 2. B and C need A's round-1 value for their majority when D and E have crashed.
    const mk = (id: number, x: number) =>
      new ClusterAgreement({ clusterId: id, clusterCount: 5, rounds: 3, initial: v(x) });
    const a = mk(0, 0);
    expect(a.takeOutgoing().map((m) => m.round)).toEqual([0]);
    a.receive({ from: 1, round: 1, value: v(1) });
    a.receive({ from: 2, round: 1, value: v(1) });
    a.receive({ from: 1, round: 0, value: v(2) });
    a.receive({ from: 2, round: 0, value: v(2) });
    expect(a.round).toBe(2);
    expect(a.takeOutgoing().map((m) => m.round)).toEqual([1, 2]);
    expect(a.takeOutgoing()).toEqual([]);
  });

  it('rejects invalid construction', () => {
    expect(
      () => new ClusterAgreement({ clusterId: 3, clusterCount: 3, rounds: 1, initial: v(0) }),
    ).toThrow(RangeError);
    expect(
      () => new ClusterAgreement({ clusterId: 0, clusterCount: 3, rounds: -1, initial: v(0) }),
    ).toThrow(RangeError);
    expect(
      () => new ClusterAgreement({ clusterId: 0, clusterCount: 3, rounds: 1, initial: v(NaN) }),
    ).toThrow(RangeError);
  });

  it('validity, contraction and ε-agreement under random delivery and minority crashes', () => {
    fc.assert(
      fc.property(
        instance,
        fc.integer(),
        ({ k, initials, epsilon, rounds, seed, estimator }, crashSeed) => {
          const rng = createRng(seed);
          const crashRng = createRng(crashSeed);
          const maxCrashes = Math.ceil(k / 2) - 1;
          const crashCount = randInt(crashRng, maxCrashes + 1);
          const crashed = shuffle(crashRng, [...Array(k).keys()]).slice(0, crashCount);
          const budgets = new Map(
            crashed.map((c) => [c, randInt(crashRng, (rounds + 1) * Math.max(1, k - 1) + 1)]),
          );
          const { clusters, history, deliveries } = simulate(
            initials,
            rounds,
            budgets,
            rng,
            estimator,
          );
          const slack = 2 * ulpSlack(initials);

          // Validity: every value any cluster ever held lies in the box of the inputs.
          expectInBox(history.flat(), initials);
          // Contraction: each midpoint round at least halves the spread (up to one float32
          // rounding); the trimmed-mean estimate round does not widen it.
          checkContraction(history, rounds, ulpSlack(initials), estimator);
          // Termination: finitely many deliveries, every live cluster done, within ε.
          expect(deliveries).toBeLessThanOrEqual(k * k * Math.max(1, rounds));
          const live = clusters.filter((c) => !budgets.has(c.clusterId));
          expect(live.length).toBeGreaterThanOrEqual(majorityOf(k));
          for (const c of live) {
            expect(c.done).toBe(true);
            expect(c.round).toBe(rounds);
          }
          expect(maxSpread(live.map((c) => c.value))).toBeLessThanOrEqual(epsilon + slack);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('with a majority crashed, survivors stall visibly below R instead of answering', () => {
    fc.assert(
      fc.property(
        instance.filter(({ k, spread }) => k >= 3 && spread > 0),
        fc.integer(),
        ({ k, initials, spread, seed, estimator }, crashSeed) => {
          const rounds = agreementRoundsFor(estimator, spread, spread / 64); // R = 6 or 7
          const crashRng = createRng(crashSeed);
          const crashCount = majorityOf(k) + randInt(crashRng, k - majorityOf(k)); // in [maj, k − 1]
          const crashed = shuffle(crashRng, [...Array(k).keys()]).slice(0, crashCount);
          // Each crashed cluster sends part (maybe all) of its round-0 broadcast, then dies.
          const budgets = new Map(crashed.map((c) => [c, randInt(crashRng, k)]));
          const { clusters, history } = simulate(
            initials,
            rounds,
            budgets,
            createRng(seed),
            estimator,
          );
          const survivors = clusters.filter((c) => !budgets.has(c.clusterId));
          expect(survivors.length).toBeGreaterThan(0);
          for (const c of survivors) {
            expect(c.done).toBe(false);
            expect(c.round).toBeLessThan(rounds);
            expect(c.round).toBeLessThanOrEqual(1);
            expect(c.outgoing()?.round).toBe(c.round);
            expect(c.heldFrom(c.round).length).toBeLessThan(majorityOf(k));
          }
          expectInBox(history.flat(), initials);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('AgreementCoordinator', () => {
  const v = (...xs: number[]): Float32Array => Float32Array.from(xs);

  it('validates submissions with typed reasons', () => {
    const co = new AgreementCoordinator({
      clusterCount: 3,
      rounds: 2,
      dimension: 2,
      estimator: 'midpoint',
    });
    expect(co.submit(3, 0, v(0, 0))).toEqual({ accepted: false, reason: 'unknown-cluster' });
    expect(co.submit(0, 2, v(0, 0))).toMatchObject({ reason: 'invalid-round' });
    expect(co.submit(0, 0, v(0))).toMatchObject({ reason: 'wrong-length' });
    expect(co.submit(0, 0, v(NaN, 0))).toMatchObject({ reason: 'non-finite' });
    expect(co.submit(0, 1, v(0, 0))).toMatchObject({ reason: 'out-of-order' });
    expect(co.submit(0, 0, v(0, 0))).toEqual({ accepted: true });
    expect(co.submit(0, 0, v(0, 0))).toMatchObject({ reason: 'duplicate' });
    expect(co.next(0)).toBeUndefined(); // 1 of 3: no majority yet
    expect(co.hasQuorum(0)).toBe(false);
    expect(co.submit(2, 0, v(4, 2))).toEqual({ accepted: true });
    expect(co.hasQuorum(0)).toBe(true);
    const n0 = co.next(0)!;
    expect(n0.round).toBe(1);
    expect([...n0.value]).toEqual([2, 1]);
    // Stable even after more values arrive.
    expect(co.submit(1, 0, v(10, 10))).toEqual({ accepted: true });
    expect([...co.next(0)!.value]).toEqual([2, 1]);
    expect(co.submit(0, 1, v(2, 2))).toMatchObject({ reason: 'mismatch' });
    expect(co.submit(0, 1, n0.value)).toEqual({ accepted: true });
    expect(co.submit(0, 0, v(0, 0))).toMatchObject({ reason: 'stale-round' });
    expect(co.roundOf(0)).toBe(1);
    expect(co.heldFrom(0)).toEqual([0, 1, 2]);
    expect(co.heldFrom(1)).toEqual([0]);
    expect([...co.averageOfProposals()!]).toEqual([14 / 3, 4].map(Math.fround));
  });

  it('R = 0: the proposal is the output', () => {
    const co = new AgreementCoordinator({ clusterCount: 2, rounds: 0, dimension: 1 });
    expect(co.submit(1, 0, v(5))).toEqual({ accepted: true });
    expect([...co.outputOf(1)!]).toEqual([5]);
    expect(co.outputOf(0)).toBeUndefined();
    expect(co.next(1)).toBeUndefined();
  });

  /** Drive the coordinator with live clusters acting in random order; crashed ones stop. */
  function drive(
    initials: readonly Float32Array[],
    rounds: number,
    crashAfter: ReadonlyMap<number, number>,
    rng: Rng,
    estimator?: AgreementEstimator,
  ) {
    const k = initials.length;
    const co = new AgreementCoordinator({
      clusterCount: k,
      rounds,
      dimension: initials[0]!.length,
      estimator,
    });
    const actions = new Array<number>(k).fill(0);
    const history: Float32Array[][] = initials.map(() => []);
    const canAct = (c: number): boolean => {
      if (actions[c]! >= (crashAfter.get(c) ?? Infinity)) return false;
      if (co.outputOf(c) !== undefined) return false;
      return co.roundOf(c) < 0 || co.hasQuorum(co.roundOf(c));
    };
    let steps = 0;
    while (true) {
      const ready = [...Array(k).keys()].filter(canAct);
      if (ready.length === 0) break;
      const c = ready[randInt(rng, ready.length)]!;
      actions[c]!++;
      steps++;
      if (co.roundOf(c) < 0) {
        expect(co.submit(c, 0, initials[c]!)).toEqual({ accepted: true });
        history[c]!.push(initials[c]!);
        continue;
      }
      const n = co.next(c)!;
      history[c]!.push(n.value);
      if (n.round < rounds) expect(co.submit(c, n.round, n.value)).toEqual({ accepted: true });
    }
    return { co, history, steps };
  }

  it('never waits for crashed clusters: validity, contraction, ε-agreement', () => {
    fc.assert(
      fc.property(
        instance,
        fc.integer(),
        ({ k, initials, epsilon, rounds, seed, estimator }, crashSeed) => {
          const crashRng = createRng(crashSeed);
          const crashCount = randInt(crashRng, Math.ceil(k / 2));
          const crashed = shuffle(crashRng, [...Array(k).keys()]).slice(0, crashCount);
          const crashAfter = new Map(crashed.map((c) => [c, randInt(crashRng, rounds + 2)]));
          const { co, history, steps } = drive(
            initials,
            rounds,
            crashAfter,
            createRng(seed),
            estimator,
          );
          expect(steps).toBeLessThanOrEqual(k * (rounds + 1));
          expectInBox(history.flat(), initials);
          checkContraction(history, rounds, ulpSlack(initials), estimator);
          const outputs: Float32Array[] = [];
          for (let c = 0; c < k; c++) {
            if (crashAfter.has(c)) continue;
            const out = co.outputOf(c);
            expect(out).toBeDefined();
            expect(co.roundOf(c)).toBe(rounds);
            outputs.push(out!);
          }
          expect(maxSpread(outputs)).toBeLessThanOrEqual(epsilon + 2 * ulpSlack(initials));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stalls visibly (no quorum, no output) when a majority of clusters crashed', () => {
    fc.assert(
      fc.property(
        instance.filter(({ k, spread }) => k >= 3 && spread > 0),
        fc.integer(),
        ({ k, initials, spread, seed, estimator }, crashSeed) => {
          const rounds = agreementRoundsFor(estimator, spread, spread / 64);
          const crashRng = createRng(crashSeed);
          const crashCount = majorityOf(k) + randInt(crashRng, k - majorityOf(k));
          const crashed = shuffle(crashRng, [...Array(k).keys()]).slice(0, crashCount);
          // Crashed clusters may get their proposal in, then die.
          const crashAfter = new Map(crashed.map((c) => [c, randInt(crashRng, 2)]));
          const { co } = drive(initials, rounds, crashAfter, createRng(seed), estimator);
          for (let c = 0; c < k; c++) {
            if (crashAfter.has(c)) continue;
            expect(co.outputOf(c)).toBeUndefined();
            expect(co.roundOf(c)).toBeLessThanOrEqual(1);
          }
          expect(co.hasQuorum(1)).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('estimators and the f-Byzantine quorum', () => {
  const v = (...xs: number[]): Float32Array => Float32Array.from(xs);
  /** Any finite float32, huge ones included: what a Byzantine cluster may send. */
  const anyFinite = fc.float({ noNaN: true, noDefaultInfinity: true });

  it('agreementStepInto: mean or midpoint of what is left after dropping f per side', () => {
    const values = [v(0, 10), v(1, -1000), v(2, 4), v(100, 6), v(3, 5)];
    expect([...agreementStepInto(new Float32Array(2), values, 'mean')]).toEqual(
      [106 / 5, -975 / 5].map(Math.fround),
    );
    expect([...agreementStepInto(new Float32Array(2), values, 'mean', 1)]).toEqual([2, 5]);
    expect([...agreementStepInto(new Float32Array(2), values, 'midpoint', 1)]).toEqual([2, 5]);
    expect([...agreementStepInto(new Float32Array(2), values, 'midpoint', 2)]).toEqual([2, 5]);
    expect([...agreementStepInto(new Float32Array(2), values, 'midpoint')]).toEqual([50, -495]);
    expect(() => agreementStepInto(new Float32Array(2), values, 'mean', 3)).toThrow(RangeError);
    expect(() => agreementStepInto(new Float32Array(2), [v(1)], 'mean')).toThrow(RangeError);
  });

  it('agreementStepInto: with ≤ f Byzantine values of any size, stays inside the correct box', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom<'mean' | 'midpoint'>('mean', 'midpoint'),
        fc.integer(),
        (f, d, rule, seed) => {
          const rng = createRng(seed);
          // f + 1 .. 2f + 6 correct values in a modest range, up to f Byzantine of any size
          const correctCount = f + 1 + randInt(rng, f + 6);
          const correct = Array.from({ length: correctCount }, () =>
            Float32Array.from({ length: d }, () => (rng.next() - 0.5) * 200),
          );
          return fc.assert(
            fc.property(
              fc.array(fc.array(anyFinite, { minLength: d, maxLength: d }), {
                minLength: 0,
                maxLength: f,
              }),
              (byz) => {
                const all = shuffle(rng, [...correct, ...byz.map((b) => Float32Array.from(b))]);
                if (all.length < 2 * f + 1) return; // not enough values to drop f per side
                const out = agreementStepInto(new Float32Array(d), all, rule, f);
                expectInBox([out], correct);
              },
            ),
            { numRuns: 20 },
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('quorumOf: a majority when f = 0; otherwise any two quorums share 3f + 1 clusters', () => {
    for (let k = 1; k <= 200; k++) expect(quorumOf(k, 0)).toBe(majorityOf(k));
    expect(quorumOf(6, 1)).toBe(5);
    expect(quorumOf(11, 2)).toBe(9);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: 100 }), (k, f) => {
        if (k < 3 * f + 1) {
          expect(() => quorumOf(k, f)).toThrow(RangeError);
          return;
        }
        const q = quorumOf(k, f);
        expect(q).toBeLessThanOrEqual(k);
        expect(q).toBeGreaterThanOrEqual(majorityOf(k));
        expect(2 * q - k).toBeGreaterThanOrEqual(3 * f + 1);
        // the least such quorum
        expect(q - 1 < majorityOf(k) || 2 * (q - 1) - k < 3 * f + 1).toBe(true);
      }),
    );
    expect(() => quorumOf(5, -1)).toThrow(RangeError);
    expect(() => quorumOf(5, 0.5)).toThrow(RangeError);
  });

  it('agreementRoundsFor adds the trimmed-mean estimate round', () => {
    expect(agreementRoundsFor('midpoint', 8, 1)).toBe(3);
    expect(agreementRoundsFor('trimmed-mean', 8, 1)).toBe(4);
    expect(agreementRoundsFor('trimmed-mean', 0, 1)).toBe(1);
  });

  it('the estimate round need not halve the spread (why it is an extra round); the midpoint does', () => {
    // k = 5, values 0, 0, ½, 1, 1: cluster 0 holds {0, 1, 2}, cluster 4 holds {2, 3, 4}
    const initials = [0, 0, 0.5, 1, 1];
    const after = (estimator: AgreementEstimator) => {
      const mk = (id: number) =>
        new ClusterAgreement({
          clusterId: id,
          clusterCount: 5,
          rounds: 2,
          initial: v(initials[id]!),
          estimator,
        });
      const a = mk(0);
      const e = mk(4);
      for (const from of [1, 2]) a.receive({ from, round: 0, value: v(initials[from]!) });
      for (const from of [3, 2]) e.receive({ from, round: 0, value: v(initials[from]!) });
      expect(a.round).toBe(1);
      expect(e.round).toBe(1);
      return e.value[0]! - a.value[0]!;
    };
    expect(after('trimmed-mean')).toBeCloseTo(2 / 3, 6); // > ½ of the initial spread 1
    expect(after('midpoint')).toBe(0.5);
  });

  it('rejects NaN and ±Infinity with the trimmed mean and f > 0 too', () => {
    const a = new ClusterAgreement({
      clusterId: 0,
      clusterCount: 6,
      rounds: 2,
      initial: v(0),
      byzantine: 1,
    });
    expect(a.quorum).toBe(5);
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(a.receive({ from: 1, round: 0, value: v(bad) })).toEqual({
        accepted: false,
        reason: 'non-finite',
      });
    }
    expect(a.heldFrom(0)).toEqual([0]);
    const co = new AgreementCoordinator({ clusterCount: 6, rounds: 2, dimension: 1, byzantine: 1 });
    expect(co.submit(1, 0, v(NaN))).toEqual({ accepted: false, reason: 'non-finite' });
    expect(
      () =>
        new ClusterAgreement({
          clusterId: 0,
          clusterCount: 3,
          rounds: 1,
          initial: v(0),
          byzantine: 1,
        }),
    ).toThrow(RangeError);
    expect(
      () =>
        new ClusterAgreement({
          clusterId: 0,
          clusterCount: 3,
          rounds: 1,
          initial: v(0),
          estimator: 'median' as AgreementEstimator,
        }),
    ).toThrow(RangeError);
  });

  it('message form with f Byzantine clusters (equivocating, any finite size): validity, contraction, ε-agreement', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 6, max: 12 }),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(...AGREEMENT_ESTIMATORS),
        fc.integer(),
        (k, d, estimator, seed) => {
          const f = k >= 11 ? 2 : 1; // k ≥ 5f + 1: the quorum is reachable without them
          const rng = createRng(seed);
          const byzantine = new Set(shuffle(rng, [...Array(k).keys()]).slice(0, f));
          const initials = Array.from({ length: k }, () =>
            Float32Array.from({ length: d }, () => (rng.next() - 0.5) * 20),
          );
          const correctIds = [...Array(k).keys()].filter((c) => !byzantine.has(c));
          const correctInitials = correctIds.map((c) => initials[c]!);
          const spread = maxSpread(correctInitials);
          const epsilon = Math.max(spread / 100, 1e-3);
          const rounds = agreementRoundsFor(estimator, spread, epsilon);
          const parts = new Map(
            correctIds.map((c) => [
              c,
              new ClusterAgreement({
                clusterId: c,
                clusterCount: k,
                rounds,
                initial: initials[c]!,
                estimator,
                byzantine: f,
              }),
            ]),
          );
          const history = new Map(correctIds.map((c) => [c, [] as Float32Array[]]));
          const pending: { to: number; from: number; msg: AgreementMessage }[] = [];
          const lie = () =>
            Float32Array.from({ length: d }, () => {
              const x = rng.next();
              return x < 0.3 ? 3e38 * (rng.next() - 0.5) : x < 0.6 ? (rng.next() - 0.5) * 40 : 1e6;
            });
          // every Byzantine cluster sends every correct cluster its own lie for every round
          for (const b of byzantine) {
            for (let r = 0; r < rounds; r++) {
              for (const to of correctIds)
                pending.push({ to, from: b, msg: { round: r, value: lie() } });
            }
          }
          const flush = (c: number) => {
            const p = parts.get(c)!;
            for (const msg of p.takeOutgoing()) {
              history.get(c)!.push(msg.value);
              for (const to of correctIds) if (to !== c) pending.push({ to, from: c, msg });
            }
            if (p.done && history.get(c)!.length === rounds) history.get(c)!.push(p.value);
          };
          for (const c of correctIds) flush(c);
          while (pending.length > 0) {
            const i = randInt(rng, pending.length);
            const { to, from, msg } = pending[i]!;
            pending[i] = pending[pending.length - 1]!;
            pending.pop();
            parts.get(to)!.receive({ from, round: msg.round, value: msg.value });
            flush(to);
          }
          const all = [...history.values()];
          expectInBox(all.flat(), correctInitials);
          checkContraction(all, rounds, ulpSlack(correctInitials), estimator);
          for (const p of parts.values()) expect(p.done).toBe(true);
          expect(maxSpread([...parts.values()].map((p) => p.value))).toBeLessThanOrEqual(
            epsilon + 2 * ulpSlack(correctInitials),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('at many clusters the trimmed mean stays near the mean of the proposals; the midpoint does not', () => {
    const rng = createRng(11);
    const k = 625;
    const d = 40;
    const proposals = Array.from({ length: k }, () =>
      Float32Array.from({ length: d }, () => 0.01 + 0.05 * gaussian(rng)),
    );
    const mean = averageProposals(proposals);
    const rmsError = (estimator: AgreementEstimator): number => {
      const rounds = agreementRoundsFor(estimator, maxSpread(proposals), 1e-4);
      const co = new AgreementCoordinator({ clusterCount: k, rounds, dimension: d, estimator });
      // clusters act in a random order: each one's round value is computed from whatever
      // quorum of values had arrived when it asked, so the held sets differ
      const order = shuffle(rng, [...Array(k).keys()]);
      for (const c of order) co.submit(c, 0, proposals[c]!);
      for (let r = 0; r < rounds; r++) {
        for (const c of shuffle(rng, [...Array(k).keys()])) {
          const n = co.next(c)!;
          if (n.round < rounds) co.submit(c, n.round, n.value);
        }
      }
      let worst = 0;
      for (let c = 0; c < k; c++) {
        const out = co.outputOf(c)!;
        let sq = 0;
        for (let i = 0; i < d; i++) sq += (out[i]! - mean[i]!) ** 2;
        worst = Math.max(worst, Math.sqrt(sq / d));
      }
      return worst;
    };
    const trimmed = rmsError('trimmed-mean');
    const midpoint = rmsError('midpoint');
    // noise of one proposal: 0.05; of the mean of 625: 0.002
    expect(trimmed).toBeLessThan(0.005);
    expect(midpoint).toBeGreaterThan(4 * trimmed);
  });
});
