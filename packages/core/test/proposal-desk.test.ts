import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jobSpecSchema } from '@swarmgrad/protocol';
import {
  DEFAULT_STRIKES,
  ProposalDesk,
  type DeskEffect,
  type DeskProposal,
} from '../src/swarm/proposal-desk.ts';
import type { TabRegistry } from '../src/swarm/seat-registry.ts';
import { fp32Engine } from './support/engine.ts';
import { seatedRegistry } from './support/registry.ts';

const DIMENSION = 8;
const job = jobSpecSchema.parse({ name: 'desk', cluster: { size: 4 } });

/** Eight tabs in two clusters of four, an engine voting with both, a desk at iteration 0. */
function setup(tabs = 8, stepScale?: (delay: number) => number) {
  const registry = seatedRegistry(job, tabs);
  const engine = fp32Engine({ dimension: DIMENSION, graceMs: 0 });
  engine.setClusters([...registry.liveClusters()]);
  const desk = new ProposalDesk(registry, engine, {
    ...DEFAULT_STRIKES,
    decode: (frame) =>
      frame.byteLength === DIMENSION * 4 ? new Float32Array(DIMENSION) : undefined,
    now: () => 0,
    stepScale,
  });
  desk.startIteration(engine.clusters);
  return { registry, engine, desk };
}

let nextId = 0;
function proposal(
  tabId: string,
  clusterId: number,
  digest: string,
  baseIteration = 0,
): DeskProposal {
  return {
    id: `p${++nextId}`,
    node: 'n',
    tabId,
    clusterId,
    baseIteration,
    frame: new Uint8Array(DIMENSION * 4),
    update: new Float32Array(DIMENSION).fill(digest.length),
    staleness: 0,
    digest,
    inputs: [{ slot: 0, digest: 'in' }],
    rejected: [],
    aggregator: { name: 'mean', f: 0 },
  };
}

/** The others of a cluster, proposer excluded, in slot order. */
function othersOf(registry: TabRegistry, clusterId: number, proposer: string): string[] {
  return registry
    .members(clusterId)
    .map((m) => m.tabId)
    .filter((id) => id !== proposer);
}

const kinds = (effects: DeskEffect[]) => effects.map((e) => e.kind);

/** Every other member of the cluster computed the proposal's digest (iteration 0). */
function confirmByOthers(
  registry: TabRegistry,
  desk: ProposalDesk,
  clusterId: number,
  p: DeskProposal,
): DeskEffect[] {
  return othersOf(registry, clusterId, p.tabId).flatMap((tabId) =>
    desk.confirm({
      tabId,
      clusterId,
      iteration: 0,
      proposer: p.tabId,
      answer: { kind: 'computed', digest: p.digest },
    }),
  );
}

/** What the coordinator does with a quarantine effect, enough for the desk to see it. */
function shell(registry: TabRegistry, desk: ProposalDesk, effects: DeskEffect[]): DeskEffect[] {
  const all: DeskEffect[] = [];
  for (const effect of effects) {
    all.push(effect);
    if (effect.kind !== 'quarantine') continue;
    const tab = registry.tabs.get(effect.tabId)!;
    tab.quarantined = true;
    registry.invalidateLive();
    all.push(...shell(registry, desk, desk.reconsider(effect.clusterId, effect.tabId)));
  }
  return all;
}

describe('ProposalDesk', () => {
  it('counts a proposal only when its proposer and the members that computed it are a majority', () => {
    const { registry, engine, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const proposer = registry.proposerOf(cluster)!;
    const others = othersOf(registry, cluster, proposer);
    const p = proposal(proposer, cluster, 'agreed');
    const { outcome, effects } = desk.propose(p);
    expect(outcome).toEqual({ pending: true });
    const ask = effects.find((e) => e.kind === 'ask-confirm');
    expect(ask?.kind === 'ask-confirm' && ask.to).toEqual(others);
    expect(desk.hasPending(cluster)).toBe(true);

    const answer = (tabId: string, digest: string) =>
      desk.confirm({
        tabId,
        clusterId: cluster,
        iteration: 0,
        proposer,
        answer: { kind: 'computed', digest },
      });
    // proposer + 1 of 4 live members: not yet a majority
    expect(answer(others[0]!, 'agreed')).toEqual([]);
    // the same member twice, or the proposer vouching for itself, changes nothing
    expect(answer(others[0]!, 'agreed')).toEqual([]);
    expect(answer(proposer, 'agreed')).toEqual([]);
    expect(engine.proposers()).toEqual([]);
    const decided = answer(others[1]!, 'agreed');
    expect(kinds(decided)).toEqual([
      'cancel-timeout',
      'verdict',
      'counted',
      'settle',
      'maybe-close',
    ]);
    expect(decided).toContainEqual({
      kind: 'settle',
      proposalId: p.id,
      outcome: { ok: true, counted: true },
    });
    expect(engine.proposers()).toEqual([cluster]);
    expect(desk.verdicts.confirmed).toBe(1);
    expect(desk.hasPending(cluster)).toBe(false);
  });

  it('counts a proposal its vouchers confirm without asking anyone; asks only the members it lacks; a voucher of a non-member counts for nothing', () => {
    const { registry, engine, desk } = setup();
    const [first, second] = registry.clusters.map((c) => c.id) as [number, number];
    const proposer = registry.proposerOf(first)!;
    const others = othersOf(registry, first, proposer);
    // proposer + 2 vouchers of 4 live members: a majority, decided in the proposal's own call
    const vouched = {
      ...proposal(proposer, first, 'agreed'),
      vouched: others.slice(0, 2).map((id) => [id, 'agreed'] as const),
    };
    const { outcome, effects } = desk.propose(vouched);
    expect(outcome).toEqual({ pending: true });
    expect(kinds(effects)).not.toContain('ask-confirm');
    expect(effects).toContainEqual({
      kind: 'settle',
      proposalId: vouched.id,
      outcome: { ok: true, counted: true },
    });
    expect(engine.proposers()).toEqual([first]);
    expect(desk.hasPending(first)).toBe(false);

    // one voucher, and one of a tab of the other cluster: the desk asks the two without one
    const proposer2 = registry.proposerOf(second)!;
    const others2 = othersOf(registry, second, proposer2);
    const partial = {
      ...proposal(proposer2, second, 'agreed'),
      vouched: [[others2[0]!, 'agreed'] as const, [others[2]!, 'agreed'] as const],
    };
    const asked = desk.propose(partial);
    const ask = asked.effects.find((e) => e.kind === 'ask-confirm');
    expect(ask?.kind === 'ask-confirm' && ask.to).toEqual(others2.slice(1));
    expect(engine.proposers()).toEqual([first]);
    // the voucher counted: one more member's answer makes the majority
    const decided = desk.confirm({
      tabId: others2[1]!,
      clusterId: second,
      iteration: 0,
      proposer: proposer2,
      answer: { kind: 'computed', digest: 'agreed' },
    });
    expect(kinds(decided)).toContain('counted');
    expect(engine.proposers().sort()).toEqual([first, second].sort());
  });

  it('vouchers naming another digest from a majority of the other members refute the proposer at once', () => {
    const { registry, engine, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const proposer = registry.proposerOf(cluster)!;
    const others = othersOf(registry, cluster, proposer);
    const lying = {
      ...proposal(proposer, cluster, 'forged'),
      vouched: others.slice(0, 2).map((id) => [id, 'honest'] as const),
    };
    const effects = shell(registry, desk, desk.propose(lying).effects);
    expect(kinds(effects)).not.toContain('ask-confirm');
    expect(effects).toContainEqual(
      expect.objectContaining({ kind: 'quarantine', tabId: proposer, reason: 'refuted' }),
    );
    expect(engine.proposers()).toEqual([]);
    expect(desk.verdicts.refuted).toBe(1);
  });

  it('a majority that recomputed another frame refutes the proposer: demoted, quarantined, not counted', () => {
    const { registry, engine, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const liar = registry.proposerOf(cluster)!;
    const others = othersOf(registry, cluster, liar);
    const p = proposal(liar, cluster, 'forged');
    desk.propose(p);
    const effects = others.flatMap((tabId) =>
      shell(
        registry,
        desk,
        desk.confirm({
          tabId,
          clusterId: cluster,
          iteration: 0,
          proposer: liar,
          answer: { kind: 'computed', digest: 'honest' },
        }),
      ),
    );
    expect(effects).toContainEqual({
      kind: 'quarantine',
      tabId: liar,
      clusterId: cluster,
      by: others.slice(0, 2).sort(),
      reason: 'refuted',
    });
    expect(effects.find((e) => e.kind === 'settle')).toMatchObject({
      proposalId: p.id,
      outcome: { ok: false, code: 'refuted' },
    });
    expect(engine.proposers()).toEqual([]);
    expect(registry.tabs.get(liar)!.demoted).toBe(true);
    expect(registry.proposerOf(cluster)).not.toBe(liar);
    expect(desk.verdicts.refuted).toBe(1);
  });

  it('refuses a tab without the role; three races quarantine it; a role that moved on is no race', () => {
    const { registry, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const proposer = registry.proposerOf(cluster)!;
    const racer = othersOf(registry, cluster, proposer)[0]!;
    const effects: DeskEffect[] = [];
    for (let i = 0; i < DEFAULT_STRIKES.racesToQuarantine; i++) {
      const { outcome, effects: e } = desk.propose(proposal(racer, cluster, 'race'));
      expect(outcome).toMatchObject({ ok: false, code: 'not-proposer' });
      effects.push(...e);
      const quarantined = e.some((x) => x.kind === 'quarantine');
      expect(quarantined).toBe(i === DEFAULT_STRIKES.racesToQuarantine - 1);
    }
    expect(desk.verdicts.notProposer).toBe(DEFAULT_STRIKES.racesToQuarantine);

    // the proposer of the other cluster loses the role (silent), then its late proposal arrives
    const other = registry.clusters[1]!.id;
    const former = registry.proposerOf(other)!;
    desk.proposerSilent({ clusterId: other, iteration: 0, tabId: former });
    expect(registry.proposerOf(other)).not.toBe(former);
    const late = desk.propose(proposal(former, other, 'late'));
    expect(late.outcome).toMatchObject({ ok: false, code: 'not-proposer' });
    expect(registry.tabs.get(former)!.racedAt).toBeUndefined();
    // nor is a proposal for an older base
    const old = desk.propose(proposal(racer === former ? proposer : former, other, 'old', -1));
    expect(old.effects.some((e) => e.kind === 'quarantine')).toBe(false);
  });

  it('bounds the wait: a timeout judges on the answers so far and the role moves on', () => {
    const { registry, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const proposer = registry.proposerOf(cluster)!;
    const p = proposal(proposer, cluster, 'unanswered');
    desk.propose(p);
    expect(desk.timeout(cluster, 'not-this-one')).toEqual([]);
    const effects = desk.timeout(cluster, p.id);
    expect(effects.find((e) => e.kind === 'settle')).toMatchObject({
      outcome: { ok: false, code: 'unconfirmed' },
    });
    expect(effects).toContainEqual({ kind: 'placements', clusterId: cluster });
    expect(registry.proposerOf(cluster)).not.toBe(proposer);
    // the proposer is not blamed: nobody contradicted it
    expect(registry.tabs.get(proposer)!.demoted).toBeUndefined();
  });

  it('members leaving may decide a pending proposal; a newer proposal replaces the older', () => {
    const { registry, engine, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const proposer = registry.proposerOf(cluster)!;
    const [a, b] = othersOf(registry, cluster, proposer) as [string, string, string];
    const first = proposal(proposer, cluster, 'v1');
    desk.propose(first);
    const second = proposal(proposer, cluster, 'v2');
    const replaced = desk.propose(second).effects;
    expect(replaced).toContainEqual({
      kind: 'settle',
      proposalId: first.id,
      outcome: { ok: true, counted: false },
    });
    desk.confirm({
      tabId: a,
      clusterId: cluster,
      iteration: 0,
      proposer,
      answer: { kind: 'computed', digest: 'v2' },
    });
    expect(engine.proposers()).toEqual([]);
    // with all four live, proposer + a are 2 of 4: no majority, nothing to decide
    expect(desk.reconsider(cluster)).toEqual([]);
    // b leaves: proposer + a are 2 of the 3 live members
    registry.setConnected(registry.tabs.get(b)!, false);
    const effects = desk.reconsider(cluster);
    expect(effects).toContainEqual({
      kind: 'settle',
      proposalId: second.id,
      outcome: { ok: true, counted: true },
    });
    expect(engine.proposers()).toEqual([cluster]);
  });

  it('a tab alone in its cluster cannot move the model', () => {
    const { registry, engine, desk } = setup();
    const cluster = registry.clusters[0]!.id;
    const proposer = registry.proposerOf(cluster)!;
    for (const other of othersOf(registry, cluster, proposer))
      registry.setConnected(registry.tabs.get(other)!, false);
    const { outcome } = desk.propose(proposal(proposer, cluster, 'alone'));
    expect(outcome).toMatchObject({ ok: false, code: 'unconfirmed' });
    expect(engine.proposers()).toEqual([]);
  });

  it('lists silent proposers and moves their role once, whoever reports it', () => {
    const { registry, desk } = setup();
    const [c0, c1] = registry.clusters.map((c) => c.id) as [number, number];
    const p0 = registry.proposerOf(c0)!;
    desk.propose(proposal(p0, c0, 'here'));
    const silent = desk.silentProposers();
    expect(silent).toEqual([{ clusterId: c1, tabId: registry.proposerOf(c1)! }]);
    const report = { ...silent[0]!, iteration: 0 };
    const effects = desk.proposerSilent(report);
    expect(kinds(effects)).toEqual(['verdict', 'event', 'placements']);
    // a second node's report of the same silence changes nothing
    expect(desk.proposerSilent(report)).toEqual([]);
    expect(desk.verdicts.silent).toBe(1);
    // nor does a report for another iteration, or against a cluster with a pending proposal
    expect(desk.proposerSilent({ clusterId: c0, iteration: 0, tabId: p0 })).toEqual([]);
  });

  it("a proposal's delay is its age plus its registers' staleness: past S it is dropped, below S its step is scaled", () => {
    const { registry, engine, desk } = setup(8, (delay) => 1 / (1 + delay));
    const [c0, c1] = registry.clusters.map((c) => c.id) as [number, number];
    const confirmAll = (cluster: number, p: DeskProposal) =>
      confirmByOthers(registry, desk, cluster, p);
    // S = 2: registers 3 iterations stale on a fresh base are too old
    const tooOld = { ...proposal(registry.proposerOf(c0)!, c0, 'old'), staleness: 3 };
    desk.propose(tooOld);
    const dropped = confirmAll(c0, tooOld);
    expect(dropped).toContainEqual(expect.objectContaining({ kind: 'stale', delay: 3 }));
    expect(engine.proposers()).toEqual([]);
    // 2 iterations stale: counted at a third of its size
    const stale = { ...proposal(registry.proposerOf(c1)!, c1, 'ok'), staleness: 2 };
    desk.propose(stale);
    const counted = confirmAll(c1, stale).find((e) => e.kind === 'counted');
    expect(counted).toMatchObject({ age: 0, delay: 2, scale: 1 / 3 });
    const held = engine.exportState().held.find((h) => h.clusterId === c1)!;
    expect(held.update[0]).toBeCloseTo(stale.update![0]! / 3, 6);
    // the desk scaled a copy: the proposal as sent is untouched
    expect(stale.update![0]).toBe('ok'.length);
    // a replica taken now keeps the dropped proposal for a retry
    expect(desk.exportState().droppedStale?.map((p) => p.clusterId)).toEqual([c0]);
    // S stays 2: nothing to retry; S raised to 3: the dropped proposal counts, once
    expect(desk.retryStale()).toEqual([]);
    engine.setStaleness(3);
    const retried = desk.retryStale();
    expect(kinds(retried)).toEqual(['counted', 'maybe-close']);
    expect(retried[0]).toMatchObject({ delay: 3, scale: 1 / 4 });
    expect(engine.proposers().sort()).toEqual([c0, c1].sort());
    expect(desk.retryStale()).toEqual([]);
  });

  it("the step is scaled by the registers' mean step delay, the drop decided by their staleness", () => {
    const { registry, engine, desk } = setup(8, (delay) => 1 / (1 + delay));
    const [c0, c1] = registry.clusters.map((c) => c.id) as [number, number];
    const confirmAll = (cluster: number, p: DeskProposal) =>
      confirmByOthers(registry, desk, cluster, p);
    // S = 2: an oldest step 3 iterations back is too old, however fresh the other steps were
    const tooOld = {
      ...proposal(registry.proposerOf(c0)!, c0, 'old'),
      staleness: 3,
      stepDelay: 0.5,
    };
    desk.propose(tooOld);
    expect(confirmAll(c0, tooOld)).toContainEqual(
      expect.objectContaining({ kind: 'stale', delay: 3 }),
    );
    // oldest step 2 back, mean 0.5: counted, at 1 / (1 + 0.5) of its size, not 1 / (1 + 2)
    const mostlyFresh = {
      ...proposal(registry.proposerOf(c1)!, c1, 'ok'),
      staleness: 2,
      stepDelay: 0.5,
    };
    desk.propose(mostlyFresh);
    const counted = confirmAll(c1, mostlyFresh).find((e) => e.kind === 'counted');
    expect(counted).toMatchObject({ age: 0, delay: 2, scale: 1 / 1.5 });
    const held = engine.exportState().held.find((h) => h.clusterId === c1)!;
    expect(held.update[0]).toBeCloseTo(mostlyFresh.update![0]! / 1.5, 6);
  });

  it('forgets proposals dropped as stale when the next iteration starts', () => {
    const { registry, engine, desk } = setup();
    const c0 = registry.clusters[0]!.id;
    const p = { ...proposal(registry.proposerOf(c0)!, c0, 'old'), staleness: 5 };
    desk.propose(p);
    for (const tabId of othersOf(registry, c0, p.tabId))
      desk.confirm({
        tabId,
        clusterId: c0,
        iteration: 0,
        proposer: p.tabId,
        answer: { kind: 'computed', digest: p.digest },
      });
    desk.startIteration(engine.clusters);
    engine.setStaleness(8);
    expect(desk.retryStale()).toEqual([]);
  });

  it("decodes another node's proposal only when a close needs it; one that does not decode is left out of the close", () => {
    const registry = seatedRegistry(job, 12);
    const engine = fp32Engine({ dimension: DIMENSION, graceMs: 0 });
    engine.setClusters([...registry.liveClusters()]);
    let decodes = 0;
    const desk = new ProposalDesk(registry, engine, {
      ...DEFAULT_STRIKES,
      decode: (frame) => {
        decodes++;
        return frame.byteLength === DIMENSION * 4
          ? new Float32Array(DIMENSION).fill(frame[0]!)
          : undefined;
      },
      now: () => 0,
    });
    desk.startIteration(engine.clusters);
    const [good, alsoGood, bad] = registry.clusters.map((c) => c.id) as [number, number, number];
    const confirmAll = (clusterId: number, p: DeskProposal) =>
      void confirmByOthers(registry, desk, clusterId, p);
    const frame = new Uint8Array(DIMENSION * 4).fill(2);
    const p = { ...proposal(registry.proposerOf(good)!, good, 'g'), update: undefined, frame };
    const r = {
      ...proposal(registry.proposerOf(alsoGood)!, alsoGood, 'h'),
      update: undefined,
      frame: new Uint8Array(DIMENSION * 4).fill(4),
    };
    const q = {
      ...proposal(registry.proposerOf(bad)!, bad, 'b'),
      update: undefined,
      frame: new Uint8Array(3),
    };
    expect(desk.propose(p).outcome).toEqual({ pending: true });
    expect(desk.propose(q).outcome).toEqual({ pending: true });
    expect(desk.propose(r).outcome).toEqual({ pending: true });
    confirmAll(good, p);
    confirmAll(bad, q);
    confirmAll(alsoGood, r);
    expect(engine.proposers()).toEqual([good, alsoGood, bad]);
    expect(decodes).toBe(0);
    const closed = engine.close();
    expect(decodes).toBe(3);
    expect(closed.contributors).toEqual([good, alsoGood]);
    expect([...engine.base]).toEqual(new Array<number>(DIMENSION).fill(3));
  });

  it('is deterministic: replicas applying the same commands agree on state and effects, and every pending proposal is answered once', () => {
    type Step =
      | { kind: 'propose'; tab: number; asProposer: boolean; digest: number; base: number }
      | { kind: 'confirm'; tab: number; digest: number | null }
      | { kind: 'timeout' }
      | { kind: 'leave'; tab: number }
      | { kind: 'silent'; cluster: number };
    const step: fc.Arbitrary<Step> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('propose' as const),
          tab: fc.nat(7),
          // mostly the designated proposer of tab's cluster, sometimes tab itself (a race)
          asProposer: fc.nat(3).map((n) => n > 0),
          digest: fc.nat(1),
          base: fc.integer({ min: -1, max: 0 }),
        }),
      },
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('confirm' as const),
          tab: fc.nat(7),
          digest: fc.option(fc.nat(1), { freq: 4 }),
        }),
      },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('timeout' as const) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('leave' as const), tab: fc.nat(7) }) },
      {
        weight: 1,
        arbitrary: fc.record({ kind: fc.constant('silent' as const), cluster: fc.nat(1) }),
      },
    );
    // verdicts seen over all runs: the generated commands reach every branch
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const replicas = [setup(), setup()];
        const logs = replicas.map(() => [] as unknown[]);
        const pendingIds = new Set<string>();
        const settled = new Map<string, number>();
        let ids = 0;
        for (const s of steps) {
          const id = `q${++ids}`;
          replicas.forEach((r, index) => {
            const tabId = `t${'tab' in s ? s.tab : 0}`;
            const clusterId = r.registry.seatOf(tabId)?.clusterId ?? 0;
            const proposer = r.registry.proposerOf(clusterId) ?? '';
            const pending = r.desk.exportState().pending.find((p) => p.clusterId === clusterId);
            let effects: DeskEffect[] = [];
            if (s.kind === 'propose') {
              const result = r.desk.propose({
                ...proposal(s.asProposer ? proposer : tabId, clusterId, `d${s.digest}`, s.base),
                id,
              });
              if ('pending' in result.outcome) {
                if (index === 0) pendingIds.add(id);
              }
              effects = result.effects;
              logs[index]!.push(result.outcome);
            } else if (s.kind === 'confirm') {
              // a member of a cluster with a pending proposal answers it (any tab, when none is)
              const target = r.desk.exportState().pending[0];
              const voters = target
                ? r.registry.members(target.clusterId).map((m) => m.tabId)
                : [tabId];
              effects = r.desk.confirm({
                tabId: voters[s.tab % voters.length]!,
                clusterId: target?.clusterId ?? clusterId,
                iteration: target?.baseIteration ?? pending?.baseIteration ?? 0,
                proposer: target?.tabId ?? proposer,
                answer:
                  s.digest === null
                    ? { kind: 'abstain' }
                    : { kind: 'computed', digest: `d${s.digest}` },
              });
            } else if (s.kind === 'timeout') {
              const first = r.desk.exportState().pending[0];
              if (first) effects = r.desk.timeout(first.clusterId, first.id);
            } else if (s.kind === 'leave') {
              const tab = r.registry.tabs.get(tabId)!;
              r.registry.setConnected(tab, false);
              effects = r.desk.reconsider(clusterId);
            } else {
              const cluster = r.registry.clusters[s.cluster]!.id;
              const silentTab = r.registry.proposerOf(cluster);
              if (silentTab !== undefined)
                effects = r.desk.proposerSilent({
                  clusterId: cluster,
                  iteration: 0,
                  tabId: silentTab,
                });
            }
            effects = shell(r.registry, r.desk, effects);
            logs[index]!.push(effects.map(plain));
            if (index === 0)
              for (const e of effects) {
                if (e.kind === 'verdict') seen.add(e.verdict);
                if (e.kind === 'settle')
                  settled.set(e.proposalId, (settled.get(e.proposalId) ?? 0) + 1);
              }
          });
        }
        expect(logs[1]).toEqual(logs[0]);
        expect(replicas[1]!.desk.exportState()).toEqual(replicas[0]!.desk.exportState());
        expect(replicas[1]!.engine.proposers()).toEqual(replicas[0]!.engine.proposers());
        // acks: only proposals that waited get a later one, and at most one each
        for (const [id, n] of settled) {
          expect(pendingIds.has(id)).toBe(true);
          expect(n).toBe(1);
        }
        const still = replicas[0]!.desk.exportState().pending.map((p) => p.id);
        for (const id of pendingIds) expect(settled.has(id) !== still.includes(id)).toBe(true);
      }),
      // 200 runs missed a refutation about once in ten test runs (the coverage check below)
      { numRuns: 1000 },
    );
    expect([...seen].sort()).toEqual([
      'confirmed',
      'notProposer',
      'refuted',
      'silent',
      'unconfirmed',
    ]);
  });

  it('a replica imported from an export holds the same pending proposals and counts', () => {
    const a = setup();
    const cluster = a.registry.clusters[0]!.id;
    const proposer = a.registry.proposerOf(cluster)!;
    a.desk.propose(proposal(proposer, cluster, 'kept'));
    a.desk.confirm({
      tabId: othersOf(a.registry, cluster, proposer)[0]!,
      clusterId: cluster,
      iteration: 0,
      proposer,
      answer: { kind: 'computed', digest: 'kept' },
    });
    const b = setup();
    b.desk.importState(a.desk.exportState());
    expect(b.desk.exportState()).toEqual(a.desk.exportState());
    // and it decides the proposal as the original would
    const answer = {
      tabId: othersOf(a.registry, cluster, proposer)[1]!,
      clusterId: cluster,
      iteration: 0,
      proposer,
      answer: { kind: 'computed' as const, digest: 'kept' },
    };
    expect(kinds(b.desk.confirm(answer))).toEqual(kinds(a.desk.confirm(answer)));
  });
});

/** An effect as plain data (the proposal's typed arrays by length). */
function plain(effect: DeskEffect): unknown {
  if ('proposal' in effect) {
    const { update, frame, answers, ...rest } = effect.proposal;
    return {
      ...effect,
      proposal: { ...rest, update: update.length, frame: frame.length, answers: [...answers] },
    };
  }
  return effect;
}
