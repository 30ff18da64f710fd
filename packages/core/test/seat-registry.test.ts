import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { jobSpecSchema } from '@swarmgrad/protocol';
import { TabRegistry, type TabRecord } from '../src/swarm/seat-registry.ts';
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
