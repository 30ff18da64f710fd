/**
 * A cluster's proposal on the coordinator: checked here (schema, size, seat, decodable, finite),
 * offered to the proposal desk (core swarm/proposal-desk.ts: who may propose, confirmations,
 * strikes) as a command, and the desk's decisions carried out (`run`).
 */
import { createHash } from 'node:crypto';
import {
  allFinite,
  decodeFrameInto,
  signUpdateOfFrame,
  stalenessStepScale,
  type DeskEffect,
  type TabRecord,
} from '@swarmgrad/core';
import {
  maxUpdateFrameBytes,
  parseFrame,
  proposalMetaSchema,
  type DashboardStatus,
  type ProposalMeta,
  type ErrorCode,
} from '@swarmgrad/protocol';
import type { Command } from './shared-state.ts';
import type { AggregationRule, CoordinatorContext, Proposals } from './context.ts';
import { CONFIRM_TIMEOUT_MS } from './options.ts';

export class ProposalIntake implements Proposals {
  /** The frame behind each held proposal (replicas carry frames, not updates). */
  readonly heldFrames = new Map<number, Uint8Array>();
  /** Per proposal this node received: the bound on its wait for confirmations. */
  private readonly confirmTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly ctx: CoordinatorContext) {}

  /** Everything about a proposal this node can check alone; the offer is a shared command. */
  check(
    tab: TabRecord,
    rawMeta: unknown,
    rawFrame: unknown,
  ):
    | { ok: true; command: Extract<Command, { kind: 'proposal' }> }
    | { ok: false; code: ErrorCode; message: string } {
    const { dimension, jobId } = this.ctx;
    const meta = proposalMetaSchema.safeParse(rawMeta);
    if (!meta.success) {
      return {
        ok: false,
        code: 'invalid-message',
        message: meta.error.issues[0]?.message ?? 'bad proposal',
      };
    }
    if (!(rawFrame instanceof Uint8Array)) {
      return { ok: false, code: 'invalid-message', message: 'proposal frame must be binary' };
    }
    const maxFrameBytes = maxUpdateFrameBytes(dimension);
    if (rawFrame.byteLength > maxFrameBytes) {
      return {
        ok: false,
        code: 'payload-too-large',
        message: `frame of ${rawFrame.byteLength} bytes`,
      };
    }
    // while paused, proposals are held (the iteration closes on resume); after the last
    // iteration there is nothing to propose to
    if (this.ctx.flags.phase === 'done') {
      return { ok: false, code: 'paused', message: 'training is done' };
    }
    if (!this.ctx.shared.available()) {
      return { ok: false, code: 'paused', message: 'the shared state is out of reach' };
    }
    const seat = this.ctx.registry.seatOf(tab.id);
    if (!seat || seat.clusterId !== meta.data.clusterId) {
      return {
        ok: false,
        code: 'not-in-cluster',
        message: `you are not in cluster ${meta.data.clusterId}`,
      };
    }
    // socket.io hands Node Buffers that may sit at any offset of a shared pool (and reuses
    // them): one copy of its own, at offset 0 of a fresh buffer, so the codecs can read views
    const frame = new Uint8Array(rawFrame);
    let update: Float32Array | undefined;
    let header: {
      iteration: number;
      staleness?: number | undefined;
      stepDelay?: number | undefined;
    };
    // A sign frame (the one-bit codecs) is checked without decoding it: its checksum, job,
    // dimension and block size hold and every scale is finite, so every value is; the close
    // agrees on the signs (core sign-agreement.ts) and decodes it only if it must. At 10,000 tabs
    // that spares 1,250 decodes into fresh 31 KB arrays per iteration. Other codecs are decoded.
    if (signUpdateOfFrame(frame, { dimension, jobId }) !== undefined) {
      const parsed = parseFrame(frame, { maxFrameBytes });
      if (!parsed.ok) return { ok: false, code: parsed.error.code, message: parsed.error.message };
      header = parsed.value.header;
    } else {
      update = new Float32Array(dimension);
      const decoded = decodeFrameInto(frame, update, { dimension, jobId, maxFrameBytes });
      if (!decoded.ok)
        return { ok: false, code: decoded.error.code, message: decoded.error.message };
      if (!allFinite(update))
        return { ok: false, code: 'non-finite', message: 'update is not finite' };
      header = decoded.value;
    }
    const vouched = this.checkVouchers(tab.id, seat.clusterId, header.iteration, meta.data);
    return {
      ok: true,
      command: this.ctx.command({
        kind: 'proposal',
        tabId: tab.id,
        clusterId: seat.clusterId,
        baseIteration: header.iteration,
        frame,
        // where the command is applied in this process a decoded update is used as is; the
        // shared log (several nodes) carries the frame only, and a node decodes it when needed
        ...(update === undefined ? {} : { update }),
        staleness: header.staleness ?? 0,
        stepDelay: header.stepDelay ?? header.staleness ?? 0,
        digest: proposalDigest(frame),
        inputs: meta.data.inputs,
        rejected: meta.data.rejected,
        ...(vouched.length > 0 ? { vouched } : {}),
      }),
    };
  }

  /**
   * The vouchers whose MAC holds, as (tab id, digest), one per member; a forged one is dropped
   * (counted), the rest of the proposal stands. Whether the voucher's tab is a confirming member
   * is the desk's question, where the command applies.
   */
  private checkVouchers(
    proposer: string,
    clusterId: number,
    iteration: number,
    meta: ProposalMeta,
  ): [string, string][] {
    const vouched: [string, string][] = [];
    const seen = new Set<string>([proposer]);
    for (const v of meta.vouchers ?? []) {
      if (seen.has(v.tabId)) continue;
      const fields = { jobId: this.ctx.jobId, clusterId, iteration, proposer, digest: v.digest };
      if (!this.ctx.vouchers.verify(v.tabId, fields, v.mac)) {
        this.ctx.metrics.vouchers.inc({ result: 'forged' });
        continue;
      }
      seen.add(v.tabId);
      vouched.push([v.tabId, v.digest]);
    }
    if (vouched.length > 0) this.ctx.metrics.vouchers.inc({ result: 'verified' }, vouched.length);
    return vouched;
  }

  /**
   * A proposal frame of another node (or a snapshot's) decoded, or undefined when it is bad;
   * asked for only by a node that closes.
   */
  decode(frame: Uint8Array): Float32Array | undefined {
    const { dimension, jobId } = this.ctx;
    const update = new Float32Array(dimension);
    const decoded = decodeFrameInto(frame, update, {
      dimension,
      jobId,
      maxFrameBytes: maxUpdateFrameBytes(dimension),
    });
    return decoded.ok && allFinite(update) ? update : undefined;
  }

  /** The rule the tabs ran for a proposal on `baseIteration` (the operator may have changed it). */
  ruleFor(baseIteration: number): AggregationRule {
    const before = this.ctx.flags.previousAggregator;
    if (before !== undefined && baseIteration < before.until)
      return { name: before.name, f: before.f };
    return { name: this.ctx.job.aggregator.name, f: this.ctx.job.aggregator.f };
  }

  /**
   * The latest SDDE analysis (dashboard.ts); asking may start the next one, whose
   * recommendation an auto job acts on (onAnalysed).
   */
  stalenessAnalysis(): DashboardStatus['staleness'] {
    const { engine, registry, flags } = this.ctx;
    return this.ctx.dashboardMetrics.staleness({
      learningRate: flags.learningRate,
      activeTabs: registry.connected().length,
      threshold: engine.staleness,
      dropped: engine.staleDropped,
      auto: this.ctx.job.staleness === 'auto',
      openIterationSeconds: (performance.now() - this.ctx.iterations.openedAt) / 1000,
      // the analysis predicts the swarm as it runs: stale steps shrunk as the desk shrinks them
      stepScale: this.stepScale(),
    });
  }

  /**
   * `staleness: "auto"`: the lease holder runs the analysis, whose recommendation moves S
   * (onAnalysed), whether or not a dashboard is watching.
   */
  followAutoStaleness(): void {
    if (this.ctx.job.staleness === 'auto' && this.ctx.shared.holdsLease()) this.stalenessAnalysis();
  }

  /**
   * The factor a proposal `delay` iterations stale is counted with (job.stalenessStep); every
   * node reads η (control commands) and h (the held-out data) alike.
   */
  stepScale(): ((delay: number) => number) | undefined {
    if (this.ctx.job.stalenessStep !== 'sdde') return undefined;
    return (delay) =>
      stalenessStepScale(delay, this.ctx.flags.learningRate, this.ctx.dashboardMetrics.curvature);
  }

  /** Carries out what the proposal desk decided, in its order. */
  run(effects: readonly DeskEffect[]): void {
    const { ctx } = this;
    for (const effect of effects) {
      switch (effect.kind) {
        case 'ask-confirm': {
          const p = effect.proposal;
          const request = {
            clusterId: p.clusterId,
            iteration: p.baseIteration,
            proposer: p.tabId,
            inputs: p.inputs,
            aggregator: p.aggregator,
          };
          let sent = 0;
          for (const id of effect.to) if (ctx.tabs.send(id, 'confirm', request)) sent++;
          // each node counts the requests it wrote (to its own tabs)
          if (sent > 0) ctx.metrics.confirmRequests.inc(sent);
          // the node that received the proposal bounds the wait, for every node
          if (p.node === ctx.nodeId) {
            const timer = setTimeout(() => {
              this.confirmTimers.delete(p.id);
              ctx.submit(
                ctx.command({ kind: 'confirm-timeout', clusterId: p.clusterId, proposalId: p.id }),
              );
            }, CONFIRM_TIMEOUT_MS);
            timer.unref();
            this.confirmTimers.set(p.id, timer);
          }
          break;
        }
        case 'cancel-timeout':
          clearTimeout(this.confirmTimers.get(effect.proposalId));
          this.confirmTimers.delete(effect.proposalId);
          break;
        case 'settle':
          ctx.settle(effect.proposalId, effect.outcome);
          break;
        case 'received':
          if (effect.proposal.node === ctx.nodeId)
            ctx.wire.count('proposal', effect.proposal.frame.byteLength, ctx.dimension * 4);
          break;
        case 'counted': {
          const p = effect.proposal;
          this.heldFrames.set(p.clusterId, p.frame);
          ctx.dashboardMetrics.recordAge(effect.delay);
          ctx.dashboardMetrics.recordScale(effect.scale);
          for (const r of p.rejected) {
            ctx.logEvent(
              'update-rejected',
              `cluster ${p.clusterId}'s ${p.aggregator.name} filter rejected slot ${r.slot}: ${r.reason}`,
            );
          }
          break;
        }
        case 'stale':
          ctx.metrics.staleDropped.inc();
          ctx.dashboardMetrics.recordAge(effect.delay);
          // an auto threshold that drops everything must not wait for a close to move
          this.followAutoStaleness();
          break;
        case 'verdict':
          ctx.metrics.proposalVerdicts.inc({
            verdict: effect.verdict === 'notProposer' ? 'not-proposer' : effect.verdict,
          });
          break;
        case 'event':
          ctx.logEvent(effect.event, effect.message);
          break;
        case 'quarantine':
          ctx.membership.quarantine(effect.tabId, effect.clusterId, effect.by, effect.reason);
          break;
        case 'placements':
          ctx.membership.sendPlacements(ctx.registry.members(effect.clusterId).map((m) => m.tabId));
          break;
        case 'maybe-close':
          ctx.iterations.maybeClose();
          break;
      }
    }
  }

  stop(): void {
    for (const timer of this.confirmTimers.values()) clearTimeout(timer);
    this.confirmTimers.clear();
  }
}

/**
 * core's frameDigest (SHA-256 in hex) on node:crypto: the same digest at a fraction of the
 * portable implementation's cost, taken for every proposal at the door (1,250 per iteration at
 * 10,000 tabs).
 */
export function proposalDigest(frame: Uint8Array): string {
  return createHash('sha256').update(frame).digest('hex');
}
