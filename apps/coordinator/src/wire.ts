/**
 * Bytes on the wire, by path, beside what fp32 would have cost (the dashboard's wire panel and
 * `/metrics`); restored from checkpoints so the totals cover the whole training.
 */
import {
  wirePaths,
  type IterationFrameCounts,
  type WireBytesByPath,
  type WirePath,
} from '@swarmgrad/protocol';
import type { Metrics } from './metrics.ts';

/** What a checkpoint keeps of the counters. */
export interface WireTotals {
  bytesSent: number;
  fp32EquivalentBytes: number;
  bytesByPath?: WireBytesByPath;
}

export class WireCounters {
  bytesSent = 0;
  fp32EquivalentBytes = 0;
  byPath: WireBytesByPath = { peer: 0, proposal: 0, broadcast: 0, relay: 0 };
  /** Frames (and their bytes) the coordinator carried between tabs whose link does not connect. */
  relayedFrames = 0;
  relayedBytes = 0;
  readonly iterationFrames: IterationFrameCounts = { relay: 0, direct: 0, request: 0 };

  constructor(
    private readonly metrics: Metrics,
    private readonly dimension: number,
  ) {}

  count(path: WirePath, bytes: number, fp32Bytes: number): void {
    this.bytesSent += bytes;
    this.byPath[path] += bytes;
    this.fp32EquivalentBytes += fp32Bytes;
    this.metrics.wireBytes.inc({ path }, bytes);
    this.metrics.fp32Bytes.inc(fp32Bytes);
  }

  /** `count` copies of one iteration frame of `bytes` went `to` relays, directly, or on request. */
  countIterationFrames(to: keyof IterationFrameCounts, bytes: number, count: number): void {
    if (count === 0) return;
    this.iterationFrames[to] += count;
    this.metrics.iterationFrames.inc({ to }, count);
    this.count('broadcast', bytes * count, this.dimension * 4 * count);
  }

  countRelayed(bytes: number, fp32Bytes: number): void {
    this.relayedFrames++;
    this.relayedBytes += bytes;
    this.metrics.relayedFrames.inc();
    this.count('relay', bytes, fp32Bytes);
  }

  totals(): Required<WireTotals> {
    return {
      bytesSent: this.bytesSent,
      fp32EquivalentBytes: this.fp32EquivalentBytes,
      bytesByPath: { ...this.byPath },
    };
  }

  restore(totals: WireTotals): void {
    this.bytesSent = totals.bytesSent;
    this.fp32EquivalentBytes = totals.fp32EquivalentBytes;
    // checkpoints written before the breakdown existed restore it as zeros
    if (totals.bytesByPath) this.byPath = { ...totals.bytesByPath };
  }
}

export function isWireTotals(value: unknown): value is WireTotals {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Partial<WireTotals>;
  return (
    typeof v.bytesSent === 'number' &&
    typeof v.fp32EquivalentBytes === 'number' &&
    (v.bytesByPath === undefined || isBytesByPath(v.bytesByPath))
  );
}

function isBytesByPath(value: unknown): value is WireBytesByPath {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return wirePaths.every((p) => typeof v[p] === 'number' && Number.isFinite(v[p]) && v[p] >= 0);
}
