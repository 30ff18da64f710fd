import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { jobSpecSchema } from '@swarmgrad/protocol';
import { TabRegistry, type TabRecord } from '../src/swarm/seat-registry.ts';
import { joinOrderPlacement } from '../src/placement/index.ts';
import { addTab, seatedRegistry } from './support/registry.ts';

const job = jobSpecSchema.parse({ name: 'seats', cluster: { size: 4 } });

const tab = addTab;
const seated = (n: number): TabRegistry => seatedRegistry(job, n);

describe('TabRegistry (the seat registry)', () => {
  it('seats tabs in clusters of the job size, each in one slot, and tells each its place', () => {
    const registry = seated(8);
    expect(registry.clusters).toHaveLength(2);
    const seats = [...registry.tabs.keys()].map((id) => registry.seatOf(id));
    const keys = seats.map((s) => `${s?.clusterId}:${s?.slot}`);
    expect(new Set(keys).size).toBe(8);
    const placement = registry.placementOf('t0')!;
    expect(placement.peers.map((p) => p.tabId)).not.toContain('t0');
    expect(placement.peers).toHaveLength(3);
  });

  it('quarantines on a majority of the other live members, never on one report', () => {
    const registry = seated(4);
    const reports = new Map<string, string[]>();
    const reportsOf = (member: TabRecord) => reports.get(member.id);
    reports.set('t1', ['t0']);
    expect(registry.majorityAgainst('t0', reportsOf)).toBeUndefined();
    reports.set('t2', ['t0']);
    // two of the three others is a majority
    const verdict = registry.majorityAgainst('t0', reportsOf);
    expect(verdict?.reportedBy.sort()).toEqual(['t1', 't2']);
    expect(verdict?.clusterId).toBe(registry.seatOf('t0')!.clusterId);
    // a member that left does not count either way: t1 and t2 of the two live others
    registry.setConnected(registry.tabs.get('t3')!, false);
    expect(registry.majorityAgainst('t0', reportsOf)?.reportedBy).toHaveLength(2);
    reports.delete('t2');
    // one of two is not more than half
    expect(registry.majorityAgainst('t0', reportsOf)).toBeUndefined();
    reports.set('t2', ['t0']);
    registry.tabs.get('t0')!.quarantined = true;
    expect(registry.majorityAgainst('t0', reportsOf)).toBeUndefined();
    expect(registry.majorityAgainst('nobody', reportsOf)).toBeUndefined();
  });

  it('rotates the proposer past refuted tabs and starts over when the seats change', () => {
    const registry = seated(4);
    const cluster = registry.seatOf('t0')!.clusterId;
    const first = registry.proposerOf(cluster);
    registry.rotateProposer(cluster);
    const second = registry.proposerOf(cluster);
    expect(second).not.toBe(first);
    tab(registry, 't4');
    registry.setConnected(registry.tabs.get('t3')!, false);
    registry.rebalance(1);
    expect(registry.proposerOf(cluster)).toBe(first);
  });

  it("names as proposer the rotation's pick among the live, never-refuted members (all live when every one was)", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ connected: fc.boolean(), demoted: fc.boolean(), quarantined: fc.boolean() }),
          {
            minLength: 4,
            maxLength: 4,
          },
        ),
        fc.nat(9),
        (states, rotations) => {
          const registry = seated(4);
          const cluster = registry.seatOf('t0')!.clusterId;
          states.forEach((state, i) => {
            const record = registry.tabs.get(`t${i}`)!;
            registry.setConnected(record, state.connected);
            record.demoted = state.demoted;
            record.quarantined = state.quarantined;
          });
          for (let r = 0; r < rotations; r++) registry.rotateProposer(cluster);
          // the rule, spelled out over the member list
          const live = registry.members(cluster).filter((m) => m.live);
          const trusted = live.filter((m) => {
            const record = registry.tabs.get(m.tabId)!;
            return record.demoted !== true && !record.quarantined;
          });
          const candidates = trusted.length > 0 ? trusted : live;
          const count = rotations; // rotateProposer counts one per call while the seats hold
          const expected =
            candidates.length === 0 ? undefined : candidates[count % candidates.length]!.tabId;
          expect(registry.proposerOf(cluster)).toBe(expected);
        },
      ),
    );
  });

  it('places again only when a placement input changed since a placement that moved nobody', () => {
    const registry = seated(6);
    const place = vi.spyOn(joinOrderPlacement, 'place');
    /** Whether rebalancing at `now` ran the placement strategy. */
    const placed = (now: number): boolean => {
      const before = place.mock.calls.length;
      registry.rebalance(now, 10);
      return place.mock.calls.length > before;
    };
    try {
      // the first placement after seating confirms the seats; the next one is skipped
      expect(placed(1)).toBe(true);
      expect(placed(2)).toBe(false);
      // each input counts: a rtt, an apart pair, a departure whose grace ran out, a newcomer
      registry.tabs.get('t1')!.rttMs = 12;
      expect(placed(3)).toBe(true);
      expect(placed(4)).toBe(false);
      registry.setApart('t4', 't5', true);
      expect(placed(5)).toBe(true);
      const gone = registry.tabs.get('t5')!;
      gone.lastSeenAt = 6;
      registry.setConnected(gone, false);
      placed(6);
      // held for its grace, it is the same placement input as before it left
      expect(placed(7)).toBe(false);
      expect(registry.seatOf('t5')).toBeDefined();
      expect(placed(17)).toBe(true);
      expect(registry.seatOf('t5')).toBeUndefined();
      placed(18);
      expect(placed(19)).toBe(false);
      tab(registry, 't6');
      expect(placed(20)).toBe(true);
      expect(registry.seatOf('t6')).toBeDefined();
    } finally {
      place.mockRestore();
    }
  });

  it('skipping a placement gives what placing again would, over random histories', () => {
    const change = fc.record({
      op: fc.constantFrom('join', 'leave', 'back', 'quarantine', 'rtt', 'apart'),
      id: fc.integer({ min: 0, max: 6 }),
      other: fc.integer({ min: 0, max: 6 }),
      value: fc.integer({ min: 1, max: 90 }),
    });
    // each step: a few changes (possibly none), then a placement
    const steps = fc.array(fc.array(change, { maxLength: 3 }), { maxLength: 30 });
    fc.assert(
      fc.property(fc.constantFrom('join-order', 'rtt'), steps, (placement, history) => {
        const spec = jobSpecSchema.parse({ name: 'seats', cluster: { size: 3, placement } });
        const registry = new TabRegistry(spec);
        let now = 0;
        for (const changes of history) {
          for (const { op, id, other, value } of changes) {
            now += 5;
            const record = registry.tabs.get(`t${id}`);
            if (op === 'join' && !record) addTab(registry, `t${id}`).joinedAt = now;
            else if (op === 'leave' && record) {
              record.lastSeenAt = now;
              registry.setConnected(record, false);
            } else if (op === 'back' && record) registry.setConnected(record, true);
            else if (op === 'quarantine' && record) {
              record.quarantined = !record.quarantined;
              registry.invalidateLive();
            } else if (op === 'rtt' && record) record.rttMs = value;
            else if (op === 'apart') registry.setApart(`t${id}`, `t${other}`, value % 2 === 0);
          }
          now += 5;
          // a replica that never placed (no memory of a settled placement) places from scratch
          const fresh = new TabRegistry(spec);
          fresh.importState(JSON.parse(JSON.stringify(registry.exportState())));
          const expected = fresh.rebalance(now, 12);
          expect(registry.rebalance(now, 12)).toEqual(expected);
          expect(registry.exportState()).toEqual(fresh.exportState());
        }
      }),
      { numRuns: 300 },
    );
  });

  it('exports and imports its state as plain data', () => {
    const registry = seated(6);
    registry.setApart('t0', 't1', true);
    const copy = new TabRegistry(job);
    copy.importState(JSON.parse(JSON.stringify(registry.exportState())));
    for (const id of registry.tabs.keys()) expect(copy.seatOf(id)).toEqual(registry.seatOf(id));
    expect(copy.isApart('t1', 't0')).toBe(true);
  });
});

describe('TabTable (tabs by id, indexed by resume token)', () => {
  it('finds a tab by its token through every set, delete, replacement, import and prune', () => {
    const registry = seated(6);
    const tabs = registry.tabs;
    expect(tabs.withResumeToken('token-t3')?.id).toBe('t3');
    expect(tabs.withResumeToken('token-nobody')).toBeUndefined();
    // a record replaced under the same id: the old token no longer resumes it
    tabs.set('t3', { ...tabs.get('t3')!, resumeToken: 'fresh' });
    expect(tabs.withResumeToken('token-t3')).toBeUndefined();
    expect(tabs.withResumeToken('fresh')?.id).toBe('t3');
    tabs.delete('t3');
    expect(tabs.withResumeToken('fresh')).toBeUndefined();
    // a snapshot imported elsewhere: the index is rebuilt with the tabs
    const replica = new TabRegistry(job);
    replica.importState(registry.exportState());
    expect(replica.tabs.withResumeToken('token-t5')?.id).toBe('t5');
    expect(replica.tabs.withResumeToken('fresh')).toBeUndefined();
    tabs.clear();
    expect(tabs.withResumeToken('token-t5')).toBeUndefined();
  });

  it('agrees with a scan of every tab over random sets, replacements and deletes', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            op: fc.constantFrom('set', 'delete'),
            id: fc.integer({ min: 0, max: 5 }),
            version: fc.integer({ min: 0, max: 2 }),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          const registry = new TabRegistry(job);
          const tokens = new Set<string>();
          for (const { op, id, version } of ops) {
            if (op === 'delete') registry.tabs.delete(`t${id}`);
            else {
              // tokens are the gateway's random draws: never one token for two ids
              const resumeToken = `k${id}.${version}`;
              tokens.add(resumeToken);
              const record = registry.tabs.get(`t${id}`) ?? addTab(registry, `t${id}`);
              registry.tabs.set(record.id, { ...record, resumeToken });
            }
            for (const token of tokens) {
              const scan = [...registry.tabs.values()].find((t) => t.resumeToken === token);
              expect(registry.tabs.withResumeToken(token)).toBe(scan);
            }
          }
        },
      ),
    );
  });
});
