/** Test support: tabs joined to a seat registry the way the coordinator joins them. */
import type { JobSpec } from '@swarmgrad/protocol';
import { TabRegistry, type TabRecord } from '../../src/swarm/seat-registry.ts';

/** A connected browser tab `id`, added to the registry (not seated yet). */
export function addTab(registry: TabRegistry, id: string): TabRecord {
  const record: TabRecord = {
    id,
    resumeToken: `token-${id}`,
    joinSeq: registry.nextJoinSeq(),
    kind: 'browser',
    backend: 'wasm',
    fallbackAdapter: undefined,
    fault: undefined,
    connected: false,
    rttMs: undefined,
    report: undefined,
    joinedAt: 0,
    lastSeenAt: 0,
    quarantined: false,
    socketId: undefined,
  };
  registry.tabs.set(id, record);
  registry.setConnected(record, true);
  return record;
}

/** A registry with tabs t0..t(n-1) seated by one rebalance. */
export function seatedRegistry(job: JobSpec, n: number): TabRegistry {
  const registry = new TabRegistry(job);
  for (let i = 0; i < n; i++) addTab(registry, `t${i}`);
  registry.rebalance(0);
  return registry;
}
