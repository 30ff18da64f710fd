import { describe, expect, it } from 'vitest';
import {
  createGradientCode,
  createRng,
  encodeProposal,
  encodeToFrame,
  frameDigest,
  gaussian,
  getCodec,
  type AggregatorName,
} from '@swarmgrad/core';
import type { QuarantineConfig } from '@swarmgrad/core';
import { parseFrame } from '@swarmgrad/protocol';
import {
  ClusterRound,
  OBSERVER_SLOT,
  decodeRegister,
  type RegisterExpectations,
  type AggregateResult,
  type ClusterMembership,
  type ClusterProposal,
} from '../src/swarm/cluster-round.ts';
import { createAttack } from '../src/attacks/index.ts';
import { FakeClock, silentLogger } from '@swarmgrad/test-support/host';
import { subsets } from './support/subsets.ts';

const D = 24;

function randomVectors(n: number, seed: number, scale = 1): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: D }, () => scale * gaussian(rng)),
  );
}

function mean(vectors: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(D);
  for (const v of vectors) for (let i = 0; i < D; i++) out[i]! += v[i]! / vectors.length;
  return out;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

interface Harness {
  round: ClusterRound;
  clock: FakeClock;
  proposals: ClusterProposal[];
  aggregates: AggregateResult[];
}

function harness(
  options: {
    aggregator?: AggregatorName;
    f?: number;
    minPatienceMs?: number;
    quarantine?: QuarantineConfig | false;
    backupWarmup?: number;
    archiveIterations?: number;
  } = {},
): Harness {
  const clock = new FakeClock();
  const proposals: ClusterProposal[] = [];
  const aggregates: AggregateResult[] = [];
  const round = new ClusterRound({
    dimension: D,
    aggregator: { name: options.aggregator ?? 'mean', f: options.f ?? 0 },
    clock,
    logger: silentLogger,
    onPropose: (p) => proposals.push(p),
    onAggregate: (r) => aggregates.push(r),
    minPatienceMs: options.minPatienceMs ?? 2000,
    ...(options.quarantine === undefined ? {} : { quarantine: options.quarantine }),
    ...(options.backupWarmup === undefined ? {} : { backupWarmup: options.backupWarmup }),
    ...(options.archiveIterations === undefined
      ? {}
      : { archiveIterations: options.archiveIterations }),
  });
  return { round, clock, proposals, aggregates };
}

function membership(
  slot: number,
  liveSlots: readonly number[],
  extra: Partial<ClusterMembership> = {},
): ClusterMembership {
  return {
    clusterId: 7,
    slot,
    clusterSize: 4,
    redundancy: 1,
    scheme: 'cyclic',
    codeSeed: 8,
    proposer: slot === Math.min(...liveSlots, slot),
    peers: liveSlots.filter((s) => s !== slot).map((s) => ({ slot: s, tabId: `tab-${s}` })),
    ...extra,
  };
}

/** Every slot's coded register for partition updates u (the code the cluster agrees on). */
function codedRegisters(m: ClusterMembership, u: readonly Float32Array[]): Float32Array[] {
  const code = createGradientCode({
    slots: m.clusterSize,
    redundancy: m.redundancy,
    scheme: m.scheme,
    seed: m.codeSeed,
  });
  return Array.from({ length: m.clusterSize }, (_, slot) => {
    const b = code.coefficients(slot);
    const out = new Float32Array(D);
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (const j of code.partitionsOf(slot)) s += b[j]! * u[j]![i]!;
      out[i] = s;
    }
    return out;
  });
}

describe('coded mode (gradient code, aggregator mean)', () => {
  for (const scheme of ['cyclic', 'fractional-repetition'] as const) {
    it(`${scheme}: decodes the mean partition update exactly from any m − s registers`, () => {
      const u = randomVectors(4, 11);
      const expected = mean(u);
      for (const subset of subsets(4, 3)) {
        // the tab sits at slot 0; the slots outside the subset closed (or this tab is paused)
        const { round, proposals } = harness();
        const m = membership(0, subset, { scheme, proposer: true });
        const registers = codedRegisters(m, u);
        round.setMembership(m);
        round.setSelfActive(subset.includes(0));
        round.startIteration(5);
        for (const slot of subset) expect(round.receive(slot, 5, registers[slot]!)).toBe('held');
        const result = round.aggregated!;
        expect(result, `subset ${subset}`).toBeDefined();
        expect(result.approximate).toBe(false);
        expect(result.timedOut).toBe(false);
        expect(maxAbsDiff(result.update, expected)).toBeLessThan(1e-4);
        expect(result.contributors.every((s) => subset.includes(s))).toBe(true);
        expect(proposals).toHaveLength(1);
        expect(proposals[0]!.clusterId).toBe(7);
        expect(proposals[0]!.iteration).toBe(5);
      }
    });
  }

  it('waits while an exact decode is still possible, then flags an approximate one', () => {
    const u = randomVectors(4, 12);
    const { round, clock, aggregates } = harness({ minPatienceMs: 1000 });
    const m = membership(0, [0, 1, 2, 3]);
    const registers = codedRegisters(m, u);
    round.setMembership(m);
    round.startIteration(1);
    round.writeOwn(1, registers[0]!);
    clock.advance(10);
    round.receive(1, 1, registers[1]!); // slots 0 and 1 alone cannot decode exactly
    expect(round.aggregated).toBeUndefined();
    clock.advance(989); // the deadline is first arrival (t = 0) + 1000 ms
    expect(round.aggregated).toBeUndefined();
    clock.advance(2);
    expect(aggregates).toHaveLength(1);
    expect(aggregates[0]!.timedOut).toBe(true);
    expect(aggregates[0]!.approximate).toBe(true);
    expect(aggregates[0]!.contributors).toEqual([0, 1]);
  });

  it('rejects non-finite registers and decodes from the rest', () => {
    const u = randomVectors(4, 13);
    const { round } = harness();
    const m = membership(0, [0, 1, 2, 3]);
    const registers = codedRegisters(m, u);
    round.setMembership(m);
    round.startIteration(3);
    const poisoned = Float32Array.from(registers[1]!);
    poisoned[4] = Number.NaN;
    round.receive(1, 3, poisoned);
    for (const slot of [0, 2, 3]) round.receive(slot, 3, registers[slot]!);
    const result = round.aggregated!;
    expect(result.rejected).toEqual([{ slot: 1, reason: 'non-finite' }]);
    expect(result.approximate).toBe(false);
    expect(maxAbsDiff(result.update, mean(u))).toBeLessThan(1e-4);
    expect(round.stats.rejected['non-finite']).toBe(1);
  });
});

describe('robust mode (any other aggregator)', () => {
  it('median filters a sign-flipped peer and a NaN peer', () => {
    const honest = randomVectors(1, 21)[0]!;
    const noisy = randomVectors(4, 22, 0.01).map((n) => honest.map((h, i) => h + n[i]!));
    const { round, proposals } = harness({ aggregator: 'median', f: 1 });
    round.setMembership(membership(0, [0, 1, 2, 3, 4], { clusterSize: 5, redundancy: 0 }));
    round.startIteration(9);
    round.writeOwn(9, noisy[0]!);
    round.receive(1, 9, noisy[1]!);
    round.receive(
      2,
      9,
      noisy[2]!.map((v) => -10 * v),
    ); // sign flip, scaled
    round.receive(3, 9, noisy[3]!);
    const nan = Float32Array.from(noisy[3]!);
    nan[0] = Number.NaN;
    round.receive(4, 9, nan);
    const result = round.aggregated!;
    expect(result.mode).toBe('robust');
    expect(result.rejected).toContainEqual({ slot: 4, reason: 'non-finite' });
    expect(result.contributors).not.toContain(4);
    // the honest direction survives: within the honest noise, far from the poisoned mean
    expect(maxAbsDiff(result.update, honest)).toBeLessThan(0.05);
    const naive = mean([noisy[0]!, noisy[1]!, noisy[2]!.map((v) => -10 * v), noisy[3]!]);
    expect(maxAbsDiff(naive, honest)).toBeGreaterThan(1);
    expect(proposals[0]!.rejected).toContainEqual({ slot: 4, reason: 'non-finite' });
  });

  it('CGE drops a scaled peer and reports it as filtered', () => {
    const base = randomVectors(4, 31);
    const { round } = harness({ aggregator: 'cge', f: 1 });
    round.setMembership(membership(0, [0, 1, 2, 3]));
    round.startIteration(2);
    round.writeOwn(2, base[0]!);
    round.receive(1, 2, base[1]!);
    round.receive(
      2,
      2,
      base[2]!.map((v) => 100 * v),
    );
    round.receive(3, 2, base[3]!);
    const result = round.aggregated!;
    expect(result.contributors).toEqual([0, 1, 3]);
    expect(result.rejected).toEqual([{ slot: 2, reason: 'filtered' }]);
    expect(maxAbsDiff(result.update, mean([base[0]!, base[1]!, base[3]!]))).toBeLessThan(1e-5);
  });

  it('a write refused at the door counts as written: nobody waits for it', () => {
    const v = randomVectors(3, 81);
    const { round, proposals } = harness({ aggregator: 'cge', f: 1 });
    round.setMembership(membership(0, [0, 1, 2, 3]));
    round.startIteration(2);
    round.writeOwn(2, v[0]!);
    round.receive(1, 2, v[1]!);
    round.receive(2, 2, v[2]!);
    expect(proposals).toHaveLength(0);
    round.rejectAtDoor(3, 1, 'stale'); // another iteration: not a write of this one
    expect(proposals).toHaveLength(0);
    round.rejectAtDoor(3, 2, 'non-finite');
    expect(proposals).toHaveLength(1);
    expect(proposals[0]!.rejected).toContainEqual({ slot: 3, reason: 'non-finite' });
    expect(proposals[0]!.contributors).not.toContain(3);
    expect(round.stats.rejected['non-finite']).toBe(1);
  });

  it('quarantines a tab that keeps sending a biased update and then leaves it out', () => {
    const { round } = harness({
      aggregator: 'cge',
      f: 1,
      quarantine: { window: 2, threshold: 3, strikes: 2 },
    });
    const m = membership(0, [0, 1, 2, 3]);
    round.setMembership(m);
    const attacker = 'tab-3';
    let quarantinedAt: number | undefined;
    expect(round.quarantinedPeers()).toEqual([]);
    for (let it = 0; it < 12; it++) {
      round.startIteration(it);
      const honest = randomVectors(3, 100 + it, 0.1);
      round.writeOwn(it, honest[0]!);
      round.receive(1, it, honest[1]!);
      round.receive(2, it, honest[2]!);
      round.receive(3, it, new Float32Array(D).fill(0.5)); // a biased direction, every time
      if (quarantinedAt !== undefined) {
        // what the tab reports to the coordinator: the attacker, by tab id, and nobody else
        expect(round.quarantinedPeers()).toEqual([attacker]);
        expect(round.aggregated!.rejected).toContainEqual({ slot: 3, reason: 'quarantined' });
        expect(round.aggregated!.contributors).not.toContain(3);
        expect(round.aggregated!.contributors).toHaveLength(2); // CGE still drops f = 1
        return;
      }
      if (round.isQuarantined(attacker)) quarantinedAt = it;
    }
    throw new Error('the biased tab was never quarantined');
  });
});

describe("the operator's aggregator switch", () => {
  it('takes effect when the next iteration starts, with the buffered registers of that iteration', () => {
    const m = membership(0, [0, 1, 2, 3, 4], { clusterSize: 5, redundancy: 0, proposer: true });
    const { round, aggregates } = harness({ quarantine: false });
    round.setMembership(m);
    round.startIteration(3);
    expect(round.mode).toBe('coded');
    // the placement naming the new rule arrives during iteration 3: 3 still aggregates by the code
    round.setAggregator({ name: 'median', f: 1 });
    const u = randomVectors(5, 41);
    const coded = codedRegisters(m, u);
    for (let slot = 0; slot < 5; slot++) round.receive(slot, 3, coded[slot]!);
    expect(aggregates[0]!.mode).toBe('coded');
    expect(maxAbsDiff(aggregates[0]!.update, mean(u))).toBeLessThan(1e-4);
    expect(round.aggregatorInUse.name).toBe('mean');
    // a fast peer's register for iteration 4 arrives early and is buffered
    const honest = randomVectors(1, 42)[0]!;
    const own = randomVectors(5, 43, 0.01).map((n) => honest.map((h, i) => h + n[i]!));
    const flipped = own[1]!.map((v) => -20 * v);
    expect(round.receive(1, 4, flipped)).toBe('buffered');
    round.startIteration(4);
    expect(round.mode).toBe('robust');
    expect(round.aggregatorInUse).toEqual({ name: 'median', f: 1 });
    for (const slot of [0, 2, 3, 4]) round.receive(slot, 4, own[slot]!);
    const robust = aggregates[1]!;
    expect(robust.iteration).toBe(4);
    expect(robust.mode).toBe('robust');
    // the median keeps the honest direction that the plain mean of these registers loses
    expect(maxAbsDiff(robust.update, honest)).toBeLessThan(0.05);
    expect(maxAbsDiff(mean([own[0]!, flipped, own[2]!, own[3]!, own[4]!]), honest)).toBeGreaterThan(
      1,
    );
    // and back: the same rule again is no change, mean switches to the code at the next start
    round.setAggregator({ name: 'median', f: 1 });
    round.startIteration(5);
    expect(round.mode).toBe('robust');
    round.setAggregator({ name: 'mean', f: 0 });
    expect(round.mode).toBe('robust');
    round.startIteration(6);
    expect(round.mode).toBe('coded');
  });
});

describe('backup workers (waiting for the fastest m − b)', () => {
  it('waits for all during warm-up, then stops waiting for a consistently slow peer', () => {
    const { round, clock, aggregates } = harness({ minPatienceMs: 5000 });
    const m = membership(0, [0, 1, 2, 3]);
    round.setMembership(m);
    const u = randomVectors(4, 41);
    const registers = codedRegisters(m, u);
    const outcomes: string[] = [];
    for (let it = 0; it < 12; it++) {
      round.startIteration(it);
      clock.advance(10);
      round.writeOwn(it, registers[0]!);
      round.receive(1, it, registers[1]!);
      round.receive(2, it, registers[2]!);
      clock.advance(990); // slot 3 is 100× slower
      outcomes.push(round.receive(3, it, registers[3]!));
      clock.advance(10);
    }
    // warm-up (5 recorded iterations, recorded one iteration late): all four awaited
    expect(aggregates.slice(0, 5).every((a) => a.waitedFor === 4 && a.elapsedMs >= 1000)).toBe(
      true,
    );
    expect(outcomes.slice(0, 5).every((o) => o === 'held')).toBe(true);
    // then the rule waits for the fastest three (= m − s, still an exact decode)
    const last = aggregates.at(-1)!;
    expect(last.waitedFor).toBe(3);
    expect(last.elapsedMs).toBeLessThan(20);
    expect(last.approximate).toBe(false);
    expect(maxAbsDiff(last.update, mean(u))).toBeLessThan(1e-4);
    // the slow register, arriving after aggregation, is recorded for the policy only
    expect(outcomes.at(-1)).toBe('late');
    expect(round.stats.late).toBeGreaterThan(0);
  });

  it('never waits for a live peer forever: aggregates at the deadline', () => {
    const { round, clock, proposals } = harness({ minPatienceMs: 300 });
    const m = membership(0, [0, 1]);
    round.setMembership({ ...m, clusterSize: 2, redundancy: 0 });
    round.startIteration(4);
    clock.advance(50);
    round.writeOwn(4, new Float32Array(D).fill(1));
    clock.advance(299);
    expect(proposals).toHaveLength(0);
    clock.advance(1);
    expect(proposals).toHaveLength(1);
    expect(proposals[0]!.timedOut).toBe(true);
    expect(proposals[0]!.contributors).toEqual([0]);
  });
});

describe('registers', () => {
  it('late, duplicate, buffered and stale writes', () => {
    const { round, aggregates } = harness();
    const m = membership(0, [0, 1], { clusterSize: 2, redundancy: 0 });
    round.setMembership(m);
    round.startIteration(10);
    const a = new Float32Array(D).fill(1);
    const b = new Float32Array(D).fill(3);
    expect(round.receive(1, 11, b)).toBe('buffered'); // a fast peer already at 11
    expect(round.writeOwn(10, a)).toBe('held');
    expect(round.receive(1, 10, b)).toBe('held');
    expect(aggregates).toHaveLength(1);
    expect(aggregates[0]!.update[0]).toBeCloseTo(2, 6); // (a + b) / 2
    expect(round.receive(1, 10, a)).toBe('duplicate');
    round.startIteration(11);
    expect(round.heldSlots()).toEqual([1]); // the buffered write counts for 11
    expect(round.receive(0, 10, a)).toBe('late');
    expect(round.receive(0, 9, a)).toBe('stale');
    expect(round.receive(5, 11, a)).toBe('ignored'); // no such slot
    // a late write after aggregation does not change the result
    round.writeOwn(11, a);
    const before = Float32Array.from(round.aggregated!.update);
    expect(round.receive(1, 11, new Float32Array(D).fill(100))).toBe('duplicate');
    expect(Array.from(round.aggregated!.update)).toEqual(Array.from(before));
  });

  it('a peer that wrote and then left still counts', () => {
    const { round, aggregates } = harness();
    const m = membership(0, [0, 1, 2, 3]);
    round.setMembership(m);
    const registers = codedRegisters(m, randomVectors(4, 51));
    round.startIteration(1);
    round.receive(3, 1, registers[3]!);
    round.receive(2, 1, registers[2]!);
    round.setMembership(membership(0, [0, 1, 2])); // slot 3 closed after writing
    expect(aggregates).toHaveLength(0);
    round.writeOwn(1, registers[0]!);
    expect(aggregates).toHaveLength(1);
    expect(aggregates[0]!.contributors).toContain(3);
    expect(aggregates[0]!.approximate).toBe(false);
  });

  it("a replacement in a vacated slot writes that slot: the old writer's register is dropped", () => {
    // CI churn run: a tab closed after writing, a replacement took its slot in the same
    // iteration; its peer kept the old register (the new one was a 'duplicate') while the
    // replacement aggregated its own, and each refused the other's proposal, 1,220 times
    const { round, proposals } = harness({ aggregator: 'median', f: 0, quarantine: false });
    const pair = { clusterSize: 2, redundancy: 0 };
    const seat = (peers: { slot: number; tabId: string }[]) =>
      membership(0, [0], { ...pair, proposer: true, peers });
    round.setMembership(seat([{ slot: 1, tabId: 'tab-x' }]));
    round.startIteration(5);
    const own = new Float32Array(D).fill(1);
    const old = new Float32Array(D).fill(3);
    const replacement = new Float32Array(D).fill(7);
    round.receive(1, 5, old);
    round.receive(1, 6, old); // x was fast: a register for 6 is buffered
    round.writeOwn(5, own);
    expect(proposals.map((p) => p.update[0])).toEqual([2]);
    // x leaves (a peer that wrote and left still counts) ...
    round.setMembership(seat([]));
    expect(round.heldSlots()).toEqual([0, 1]);
    expect(proposals).toHaveLength(1);
    // ... and y takes its slot: x's registers are no longer this slot's
    round.setMembership(seat([{ slot: 1, tabId: 'tab-y' }]));
    expect(round.heldSlots()).toEqual([0]);
    expect(round.receive(1, 5, replacement)).toBe('held');
    expect(proposals.map((p) => p.update[0])).toEqual([2, 4]);
    // the member that holds y's register vouches for the proposal made of it
    const y = harness({ aggregator: 'median', f: 0, quarantine: false });
    y.round.setMembership(
      membership(1, [1], { ...pair, proposer: false, peers: [{ slot: 0, tabId: 'tab-m' }] }),
    );
    y.round.startIteration(5);
    y.round.writeOwn(5, replacement);
    y.round.receive(0, 5, own);
    expect(y.round.recompute(7, 5, proposals[1]!.inputs, { name: 'median', f: 0 }).ok).toBe(true);
    // and x's register for 6 is not taken for y's
    round.startIteration(6);
    expect(round.heldSlots()).toEqual([]);
    // a placement that only moves the proposer role drops nothing
    round.receive(1, 6, replacement);
    round.setMembership(
      membership(0, [0], { ...pair, proposer: false, peers: [{ slot: 1, tabId: 'tab-y' }] }),
    );
    expect(round.heldSlots()).toEqual([1]);
  });

  it('a new cluster or slot drops the registers of the old one', () => {
    const { round } = harness();
    round.setMembership(membership(1, [0, 1, 2, 3]));
    round.startIteration(1);
    round.receive(2, 1, new Float32Array(D));
    round.setMembership(membership(0, [0, 1], { clusterId: 8 }));
    expect(round.heldSlots()).toEqual([]);
  });

  it('after leaveCluster (a new identity) the same iteration is aggregated and proposed again', () => {
    const { round, clock, proposals, aggregates } = harness({ minPatienceMs: 500 });
    const m = membership(0, [0, 1], { clusterSize: 2, redundancy: 0 });
    round.setMembership(m);
    round.startIteration(25);
    round.writeOwn(25, new Float32Array(D).fill(1));
    round.receive(1, 25, new Float32Array(D).fill(3));
    round.receive(1, 26, new Float32Array(D).fill(5)); // a fast peer already at 26
    expect(proposals.map((p) => p.iteration)).toEqual([25]);
    // the coordinator restarted and lost that proposal; the tab is welcomed anew
    // in the old seat, writing the iteration again is refused (a single writer writes once)
    expect(round.writeOwn(25, new Float32Array(D).fill(7))).toBe('duplicate');
    round.leaveCluster();
    expect(round.heldSlots()).toEqual([]);
    expect(round.writeOwn(25, new Float32Array(D))).toBe('ignored'); // no seat yet
    expect(round.receive(1, 25, new Float32Array(D))).toBe('ignored');
    clock.advance(10_000); // no deadline of the old seat fires
    expect(aggregates).toHaveLength(1);
    // seated again (the same cluster and slot, as a restarted coordinator may well give)
    round.setMembership(m);
    expect(round.heldSlots()).toEqual([]);
    expect(round.writeOwn(25, new Float32Array(D).fill(2))).toBe('held');
    expect(round.receive(1, 25, new Float32Array(D).fill(4))).toBe('held');
    expect(proposals.map((p) => p.iteration)).toEqual([25, 25]);
    expect(proposals[1]!.update[0]).toBeCloseTo(3, 6); // (2 + 4) / 2: only the new writes
    // the old seat's register buffered for 26 is gone too
    round.startIteration(26);
    expect(round.heldSlots()).toEqual([]);
  });
});

describe('proposer handover', () => {
  it('a non-proposer aggregates, and proposes at once when it becomes proposer', () => {
    const { round, proposals, aggregates } = harness();
    const live = [0, 1, 2, 3];
    round.setMembership(membership(1, live, { proposer: false }));
    const registers = codedRegisters(membership(1, live), randomVectors(4, 61));
    round.startIteration(6);
    for (const slot of live) round.receive(slot, 6, registers[slot]!);
    expect(aggregates).toHaveLength(1);
    expect(proposals).toHaveLength(0);
    // slot 0 (the proposer) closes: the coordinator makes slot 1 the proposer
    round.setMembership(membership(1, [1, 2, 3], { proposer: true }));
    expect(proposals).toHaveLength(1);
    expect(proposals[0]!.iteration).toBe(6);
    expect(Array.from(proposals[0]!.update)).toEqual(Array.from(aggregates[0]!.update));
    // another placement for the same iteration does not propose twice
    round.setMembership(membership(1, [1, 2, 3], { proposer: true }));
    expect(proposals).toHaveLength(1);
    // the next iteration proposes on aggregation
    round.startIteration(7);
    for (const slot of [1, 2, 3]) round.receive(slot, 7, registers[slot]!);
    expect(proposals.map((p) => p.iteration)).toEqual([6, 7]);
  });

  it('a proposer that has not aggregated yet proposes when it does', () => {
    const { round, proposals } = harness();
    round.setMembership(membership(2, [0, 1, 2, 3], { proposer: false }));
    round.startIteration(3);
    round.setMembership(membership(2, [2, 3], { proposer: true }));
    expect(proposals).toHaveLength(0);
    round.writeOwn(3, new Float32Array(D).fill(1));
    round.receive(3, 3, new Float32Array(D).fill(2));
    expect(proposals).toHaveLength(1);
  });
});

describe('decodeRegister (the door for peers’ frames)', () => {
  const jobId = 0xabc;
  const codec = getCodec('one-bit');
  const update = randomVectors(1, 71)[0]!;
  const frameOf = (iteration: number, slot: number, job = jobId, staleness = 0) =>
    encodeToFrame(codec.createEncoder(D, { blockSize: 32 }), update, {
      jobId: job,
      iteration,
      round: 0,
      senderSlot: slot,
      staleness,
    });
  const expectations: RegisterExpectations = {
    jobId,
    dimension: D,
    minIteration: 4,
    maxIteration: 6,
    senderSlot: 2,
  };

  it('accepts a good frame and decodes what the codec sent', () => {
    const decoded = decodeRegister(frameOf(5, 2), expectations);
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value.iteration).toBe(5);
    // one-bit: the sign of every coordinate survives, scale = mean |v|
    for (let i = 0; i < D; i++) {
      expect(Math.sign(decoded.value.vector[i]!)).toBe(Math.sign(update[i]!) || 1);
    }
  });

  it('refuses another job, iteration, slot, a corrupted or NaN-poisoned frame', () => {
    const code = (frame: Uint8Array, over: Partial<typeof expectations> = {}) => {
      const r = decodeRegister(frame, { ...expectations, ...over });
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code(frameOf(5, 2, 0xdef))).toBe('wrong-job');
    expect(code(frameOf(3, 2))).toBe('stale');
    expect(code(frameOf(7, 2))).toBe('wrong-iteration');
    expect(code(frameOf(5, 1))).toBe('bad-header');
    expect(code(frameOf(5, 2), { dimension: D + 1 })).toBe('dimension-mismatch');
    const corrupted = frameOf(5, 2);
    corrupted[corrupted.length - 1]! ^= 0xff;
    expect(code(corrupted)).toBe('checksum-mismatch');
    const nan = createAttack('nan').corruptFrame(frameOf(5, 2));
    expect(code(nan)).toBe('non-finite');
    expect(code(nan.subarray(0, 20))).toBe('truncated');
  });

  it('refuses a pipelined register whose steps began more than the staleness bound ago', () => {
    const code = (frame: Uint8Array) => {
      const r = decodeRegister(frame, { ...expectations, maxStaleness: 2 });
      return r.ok ? 'ok' : r.error.code;
    };
    expect(code(frameOf(5, 2, jobId, 2))).toBe('ok');
    expect(code(frameOf(5, 2, jobId, 3))).toBe('stale');
    // without a bound (lock-step callers) the tag is not judged
    expect(decodeRegister(frameOf(5, 2, jobId, 3), expectations).ok).toBe(true);
  });
});

describe('recompute: any member gets the proposer’s update from the same registers', () => {
  const encode = (update: Float32Array, iteration: number) =>
    frameDigest(
      encodeProposal(update, {
        codec: 'one-bit',
        blockSize: 32,
        jobId: 1,
        clusterId: 7,
        iteration,
      }),
    );

  for (const aggregator of [
    'mean',
    'cge',
    'median',
    'centered-clipping',
    'krum',
    'bucketing',
  ] as const) {
    it(`${aggregator}: the same frame digest on every member, whatever the arrival order`, () => {
      const f = aggregator === 'mean' ? 0 : 1;
      const live = [0, 1, 2, 3];
      const u = randomVectors(4, 21);
      const registers =
        aggregator === 'mean' ? codedRegisters(membership(0, live), u) : randomVectors(4, 22);
      const members = live.map((slot) => {
        const h = harness({ aggregator, f, quarantine: false });
        h.round.setMembership(membership(slot, live));
        if (slot === 0) {
          // the proposer aggregated before (a rule with state across calls would now differ)
          h.round.startIteration(2);
          for (const s of live) h.round.receive(s, 2, randomVectors(4, 23)[s]!);
        }
        h.round.startIteration(3);
        return h;
      });
      // the proposer (slot 0) sees the registers in one order, the others in reverse
      members.forEach((h, slot) => {
        const order = slot === 0 ? [0, 1, 2, 3] : [3, 2, 1, 0];
        for (const s of order) h.round.receive(s, 3, registers[s]!);
      });
      const proposal = members[0]!.proposals.at(-1)!;
      expect(proposal.iteration).toBe(3);
      expect(proposal.inputs.length).toBeGreaterThanOrEqual(3);
      const expected = encode(proposal.update, 3);
      for (const h of members.slice(1)) {
        const again = h.round.recompute(7, 3, proposal.inputs, { name: aggregator, f });
        expect(again.ok).toBe(true);
        if (again.ok) {
          expect([...again.update]).toEqual([...proposal.update]);
          expect(encode(again.update, 3)).toBe(expected);
        }
      }
    });
  }

  it("a proposal's age: the largest staleness of its registers and the mean of their step delays, the same on every member", () => {
    const live = [0, 1, 2, 3];
    const registers = randomVectors(4, 51);
    const ages = [
      { staleness: 1, stepDelay: 0.25 },
      { staleness: 0, stepDelay: 0 },
      { staleness: 2, stepDelay: 0.5 },
      1, // a staleness alone: every step as behind as the first
    ];
    const members = live.map((slot) => {
      const h = harness({ aggregator: 'median', f: 1, quarantine: false });
      h.round.setMembership(membership(slot, live));
      h.round.startIteration(5);
      for (const s of slot === 0 ? live : [...live].reverse())
        h.round.receive(s, 5, registers[s]!, undefined, ages[s]);
      return h;
    });
    const proposal = members[0]!.proposals.at(-1)!;
    const used = proposal.inputs.map((input) => input.slot);
    const expected = {
      staleness: Math.max(...used.map((s) => [1, 0, 2, 1][s]!)),
      stepDelay: used.map((s) => [0.25, 0, 0.5, 1][s]!).reduce((a, b) => a + b, 0) / used.length,
    };
    expect(members[0]!.round.inputAge(5, proposal.inputs)).toEqual(expected);
    for (const h of members.slice(1)) {
      expect(h.round.recompute(7, 5, proposal.inputs, { name: 'median', f: 1 })).toMatchObject({
        ok: true,
        ...expected,
      });
    }
    // a tab's own register is kept as its frame carries it: written with its exact mean delay
    // it counts as its peers decode it (rounded to 1/256), so the proposer and the members
    // recomputing its proposal code the same bytes. 1.6/256 is carried as 2/256; with three
    // fresh registers beside it the mean is 0.4/256 exact (coded 0) or 0.5/256 (coded 1/256)
    const exact = { staleness: 1, stepDelay: 1.6 / 256 };
    const inFrame = parseFrame(
      encodeToFrame(getCodec('fp32').createEncoder(D, {}), registers[0]!, {
        jobId: 1,
        iteration: 6,
        round: 0,
        senderSlot: 0,
        ...exact,
      }),
    );
    const carried = inFrame.ok ? inFrame.value.header : undefined;
    expect(carried?.stepDelay).toBe(2 / 256);
    const all = live.map((slot) => ({ slot, digest: `register-${slot}` }));
    const codes = live.map((slot) => {
      const h = harness({ aggregator: 'mean', f: 0, quarantine: false });
      h.round.setMembership(membership(slot, live));
      h.round.startIteration(6);
      for (const s of live) {
        const age =
          s !== 0
            ? { staleness: 0, stepDelay: 0 }
            : slot === 0
              ? exact
              : { staleness: carried!.staleness!, stepDelay: carried!.stepDelay! };
        h.round.receive(s, 6, registers[s]!, `register-${s}`, age);
      }
      const age = h.round.inputAge(6, all);
      return frameDigest(
        encodeProposal(registers[0]!, {
          codec: 'one-bit',
          blockSize: 32,
          jobId: 1,
          clusterId: 7,
          iteration: 6,
          ...age,
        }),
      );
    });
    expect(new Set(codes).size).toBe(1);
    // a register held with another digest counts as fresh, as for the staleness
    const forged = proposal.inputs.map((input) => ({ ...input, digest: 'f'.repeat(64) }));
    expect(members[1]!.round.inputAge(5, forged)).toEqual({ staleness: 0, stepDelay: 0 });
  });

  it('reports a register it does not hold, one it holds in another version, and another cluster', () => {
    const live = [0, 1, 2, 3];
    const registers = randomVectors(4, 31);
    const { round } = harness({ aggregator: 'median', f: 1, quarantine: false });
    round.setMembership(membership(1, live));
    round.startIteration(5);
    for (const s of [1, 2, 3]) round.receive(s, 5, registers[s]!);
    const inputs = [0, 1, 2, 3].map((slot) => ({ slot, digest: 'f'.repeat(64) }));
    const missing = round.recompute(7, 5, inputs, { name: 'median', f: 1 });
    expect(missing).toMatchObject({ ok: false, reason: 'register-mismatch' });
    round.receive(0, 5, registers[0]!);
    const honest = harness({ aggregator: 'median', f: 1, quarantine: false });
    honest.round.setMembership(membership(0, live));
    honest.round.startIteration(5);
    for (const s of [0, 1, 2, 3]) honest.round.receive(s, 5, registers[s]!);
    const proposal = honest.proposals[0]!;
    expect(round.recompute(7, 5, proposal.inputs, { name: 'median', f: 1 }).ok).toBe(true);
    expect(round.recompute(8, 5, proposal.inputs, { name: 'median', f: 1 })).toMatchObject({
      ok: false,
      reason: 'not-member',
    });
    expect(round.recompute(7, 4, proposal.inputs, { name: 'median', f: 1 })).toMatchObject({
      ok: false,
      reason: 'missing-register',
    });
  });

  it('does not vouch for a proposal built from fewer registers than the rule waits for when it holds more', () => {
    const live = [0, 1, 2, 3];
    const registers = randomVectors(4, 41);
    const { round } = harness({ aggregator: 'cge', f: 1, quarantine: false });
    round.setMembership(membership(2, live));
    round.startIteration(6);
    for (const s of [0, 1, 2, 3]) round.receive(s, 6, registers[s]!);
    const own = harness({ aggregator: 'cge', f: 1, quarantine: false });
    own.round.setMembership(membership(0, live));
    own.round.startIteration(6);
    own.round.receive(0, 6, registers[0]!);
    // a proposer that takes only its own register (e.g. the proposal-race fault)
    const onlyOwn = [{ slot: 0, digest: round['archive'].get(6)!.get(0)!.digest }];
    expect(round.recompute(7, 6, onlyOwn, { name: 'cge', f: 1 })).toMatchObject({
      ok: false,
      reason: 'too-few-inputs',
      slots: [1, 2, 3],
    });
  });
});

describe('proposing again', () => {
  it('after an unconfirmed proposal, proposes the same iteration again at the next placement', () => {
    const live = [0, 1];
    const registers = randomVectors(2, 51);
    const { round, proposals } = harness({ aggregator: 'median', f: 0, quarantine: false });
    round.setMembership(membership(0, [0]));
    round.startIteration(2);
    round.receive(0, 2, registers[0]!);
    expect(proposals).toHaveLength(1);
    // a placement without news: no second proposal
    round.setMembership(membership(0, [0]));
    expect(proposals).toHaveLength(1);
    // the coordinator could not count it (alone in a cluster of four): a member joins
    round.allowRepropose(2);
    round.setMembership(membership(0, live));
    expect(proposals).toHaveLength(2);
    expect(proposals[1]!.iteration).toBe(2);
  });
});

describe('peerRegisters (what a fault-injecting tab sees)', () => {
  it("gives the peers' registers of the current iteration, or of the previous one when it holds more", () => {
    const h = harness({ aggregator: 'cge', f: 1 });
    h.round.setMembership(membership(0, [0, 1, 2, 3]));
    expect(h.round.peerRegisters()).toEqual([]);
    h.round.startIteration(5);
    const v = randomVectors(4, 3);
    h.round.writeOwn(5, v[0]!);
    h.round.receive(1, 5, v[1]!);
    h.round.receive(2, 5, v[2]!);
    const now = h.round.peerRegisters();
    expect(now.map((p) => p.id).sort()).toEqual(['tab-1', 'tab-2']); // its own slot left out
    expect(now.find((p) => p.id === 'tab-1')!.update).toBe(v[1]);
    h.round.startIteration(6);
    // nothing of 6 yet: the two registers of 5
    expect(
      h.round
        .peerRegisters()
        .map((p) => p.id)
        .sort(),
    ).toEqual(['tab-1', 'tab-2']);
    const w = randomVectors(4, 4);
    h.round.receive(3, 6, w[3]!);
    expect(
      h.round
        .peerRegisters()
        .map((p) => p.id)
        .sort(),
    ).toEqual(['tab-1', 'tab-2']);
    h.round.receive(1, 6, w[1]!);
    h.round.receive(2, 6, w[2]!);
    const six = h.round.peerRegisters();
    expect(six.map((p) => p.id).sort()).toEqual(['tab-1', 'tab-2', 'tab-3']);
    expect(six.find((p) => p.id === 'tab-1')!.update).toBe(w[1]);
    // two iterations later the registers of 6 are too old
    h.round.startIteration(8);
    expect(h.round.peerRegisters()).toEqual([]);
  });
});

describe('observer view and archive depth (the simulator runs the round this way)', () => {
  it('an observer slot writes nothing, is never waited for, and proposes from its peers alone', () => {
    const h = harness({ aggregator: 'median', f: 1, quarantine: false });
    const peers = [0, 1, 2, 3].map((slot) => ({ slot, tabId: `t${slot}` }));
    h.round.setMembership({
      ...membership(0, [0, 1, 2, 3]),
      slot: OBSERVER_SLOT,
      peers,
      proposer: true,
    });
    h.round.startIteration(5);
    expect(h.round.writeOwn(5, randomVectors(1, 40)[0]!)).toBe('ignored');
    const registers = randomVectors(4, 41);
    for (const slot of [0, 1, 2]) h.round.receive(slot, 5, registers[slot]!);
    expect(h.proposals).toHaveLength(0); // still waiting for slot 3, not for itself
    h.round.receive(3, 5, registers[3]!);
    expect(h.proposals).toHaveLength(1);
    expect(h.proposals[0]!.inputs.map((i) => i.slot)).toEqual([0, 1, 2, 3]);
  });

  it('keeps the registers of `archiveIterations` earlier iterations for recompute, and no more', () => {
    for (const archiveIterations of [0, 2]) {
      const h = harness({ aggregator: 'median', f: 1, quarantine: false, archiveIterations });
      h.round.setMembership(membership(1, [0, 1, 2, 3]));
      const inputs: { slot: number; digest: string }[][] = [];
      for (let iteration = 1; iteration <= 4; iteration++) {
        h.round.startIteration(iteration);
        const registers = randomVectors(4, 50 + iteration);
        for (const slot of [0, 1, 2, 3])
          h.round.receive(slot, iteration, registers[slot]!, `${iteration}/${slot}`);
        inputs[iteration] = [0, 1, 2, 3].map((slot) => ({ slot, digest: `${iteration}/${slot}` }));
      }
      const held = (iteration: number) =>
        h.round.recompute(7, iteration, inputs[iteration]!, { name: 'median', f: 1 }).ok;
      expect([1, 2, 3, 4].map(held)).toEqual(
        archiveIterations === 0 ? [false, false, false, true] : [false, true, true, true],
      );
    }
    expect(() => harness({ archiveIterations: -1 })).toThrow(RangeError);
  });
});
