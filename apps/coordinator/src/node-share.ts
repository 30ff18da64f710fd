/**
 * What only the node holding a tab knows — the tab's last report (its state, steps, speed and
 * training loss) — and the counters each node keeps of what it alone saw (bytes it wrote or
 * was told of, frames it relayed, messages it refused). With several nodes each one shares
 * this every heartbeat (redis-state.ts), and each node's status adds the others' to its own, so
 * the dashboard shows the whole swarm from whichever node it reaches (behind a reverse proxy,
 * any). A node writes its share every second and reads the others' with every heartbeat (a
 * third of the lease time, 1 s by default): what it shows of them is a second or two old.
 */
import { z } from 'zod';
import { tabStates, type IterationFrameCounts, type WireBytesByPath } from '@swarmgrad/protocol';
import type { TabRecord } from '@swarmgrad/core';
import type { CoordinatorContext } from './context.ts';
import type { NodeShare, SharedReport } from './shared-state.ts';

const counts = z.record(z.string().max(64), z.number().finite().nonnegative());
const amount = z.number().finite().nonnegative();

/** Another node's share as read from Redis: checked, so one bad entry cannot break a status. */
export const nodeShareSchema = z.object({
  reports: z.array(
    z.tuple([
      z.string().min(1).max(64),
      z.object({
        state: z.enum(tabStates),
        steps: amount,
        examplesPerSecond: amount,
        trainingLoss: amount.nullable(),
      }),
    ]),
  ),
  bytesSent: amount,
  fp32EquivalentBytes: amount,
  byPath: counts,
  relayedFrames: amount,
  relayedBytes: amount,
  iterationFrames: counts,
  rejected: counts,
});

/** This node's share: its connected tabs' reports and its counters. */
export function ownShare(ctx: CoordinatorContext): NodeShare {
  const reports: NodeShare['reports'] = [];
  for (const tab of ctx.registry.connected()) {
    if (!heldHere(ctx, tab) || tab.report === undefined) continue;
    const { state, steps, examplesPerSecond, trainingLoss } = tab.report;
    reports.push([tab.id, { state, steps, examplesPerSecond, trainingLoss }]);
  }
  const counters = ownCounters(ctx);
  // (spread: the wire's typed counts as the plain records a share carries)
  const { byPath, iterationFrames } = counters;
  return { reports, ...counters, byPath: { ...byPath }, iterationFrames: { ...iterationFrames } };
}

type Counters = Omit<NodeShare, 'reports' | 'byPath' | 'iterationFrames'> & {
  byPath: WireBytesByPath;
  iterationFrames: IterationFrameCounts;
};

/** This node's counters, copied. */
function ownCounters(ctx: CoordinatorContext): Counters {
  const { wire } = ctx;
  return {
    bytesSent: wire.bytesSent,
    fp32EquivalentBytes: wire.fp32EquivalentBytes,
    byPath: { ...wire.byPath },
    relayedFrames: wire.relayedFrames,
    relayedBytes: wire.relayedBytes,
    iterationFrames: { ...wire.iterationFrames },
    rejected: Object.fromEntries(ctx.rejectedByCode),
  };
}

/** Whether this node holds the tab's connection (and so has its reports). */
function heldHere(ctx: CoordinatorContext, tab: { node?: string | undefined }): boolean {
  return tab.node === undefined || tab.node === ctx.nodeId;
}

/** Other nodes' reports by tab id, built once per set of shares (a heartbeat's). */
const reportsByShares = new WeakMap<readonly NodeShare[], Map<string, SharedReport>>();

/**
 * The swarm's view: a tab's last report from whichever node holds it, and every node's
 * counters summed (this node's now, the others' as last shared).
 */
export class SwarmView {
  private readonly remote: Map<string, SharedReport>;
  readonly totals: Counters;

  constructor(private readonly ctx: CoordinatorContext) {
    const others = ctx.shared.sharedByOthers();
    let remote = reportsByShares.get(others);
    if (remote === undefined) {
      remote = new Map(others.flatMap((share) => share.reports));
      reportsByShares.set(others, remote);
    }
    this.remote = remote;
    const totals = ownCounters(ctx);
    for (const share of others) {
      totals.bytesSent += share.bytesSent;
      totals.fp32EquivalentBytes += share.fp32EquivalentBytes;
      totals.relayedFrames += share.relayedFrames;
      totals.relayedBytes += share.relayedBytes;
      addCounts(totals.byPath, share.byPath);
      addCounts(totals.iterationFrames, share.iterationFrames);
      addCounts(totals.rejected, share.rejected);
    }
    this.totals = totals;
  }

  /** A connected tab's last report, from whichever node holds it. */
  reportOf(tab: TabRecord | undefined): SharedReport | undefined {
    if (!tab?.connected) return undefined;
    return heldHere(this.ctx, tab) ? tab.report : this.remote.get(tab.id);
  }

  /** Mean of the connected tabs' last reported training loss; null when none reported one. */
  trainingLoss(): number | null {
    let sum = 0;
    let n = 0;
    for (const tab of this.ctx.registry.connected()) {
      const loss = this.reportOf(tab)?.trainingLoss;
      if (loss !== null && loss !== undefined) {
        sum += loss;
        n++;
      }
    }
    return n > 0 ? sum / n : null;
  }
}

/** Adds `more`'s counts into `into`'s, key by key (a key only one of them has counts too). */
function addCounts(into: object, more: Record<string, number>): void {
  const counts = into as Record<string, number>;
  for (const [key, value] of Object.entries(more)) counts[key] = (counts[key] ?? 0) + value;
}
