/**
 * An iteration's life on the coordinator: it opens when enough tabs are seated, is watched for
 * quorum and for silent proposers, and closes (core RoundEngine) when the majority rule says so.
 * Only the lease holder decides and computes a close (with one process, always this one); it
 * publishes the result as a `closed` command, which every node adopts without recomputing it
 * (issue 17 item 4), so with several nodes exactly one close per iteration takes effect.
 */
import type { ClosedIteration, PreparedClose } from '@swarmgrad/core';
import type { Phase } from '@swarmgrad/protocol';
import type { Command } from './shared-state.ts';
import type { CoordinatorContext, Iterations } from './context.ts';
import { ITERATION_HISTORY, SILENT_PROPOSER_FACTOR, SILENT_PROPOSER_MIN_MS } from './options.ts';
import { SwarmView } from './node-share.ts';

export class IterationCycle implements Iterations {
  lastRounds = 0;
  openedAt = performance.now();
  private closeTimer: NodeJS.Timeout | undefined;
  /** A close is queued (a microtask). */
  private closeQueued = false;
  private stopped = false;
  /** Fires when a cluster's proposer has been silent too long (armSilenceWatch). */
  private silenceTimer: NodeJS.Timeout | undefined;
  /** Durations (ms) of the last ITERATION_HISTORY iterations, oldest first. */
  private readonly recentIterationMs: number[] = [];
  /** The iteration this node already published a close of, and when it decided to. */
  private closeRequestedFor = -1;
  private closeDecidedAt: number | undefined;
  /** The close this node published and has not seen adopted yet (its command id). */
  private published: { id: string; prepared: PreparedClose } | undefined;

  constructor(private readonly ctx: CoordinatorContext) {}

  /** `now`: the clock of the command that led here (placement keeps seats by time). */
  startIfReady(now = Date.now()): void {
    if (this.seatForIteration(now)) this.openIteration();
  }

  /**
   * Places the tabs for the iteration about to open and tells those whose place changed;
   * false when no iteration can open (closing, paused, done, or too few tabs).
   */
  private seatForIteration(now: number): boolean {
    const { flags, registry, engine, membership } = this.ctx;
    if (flags.closing || flags.paused || flags.phase === 'done') return false;
    const together = registry.apartPairs().filter(([a, b]) => membership.coSeated(a, b));
    const changed = registry.rebalance(now, this.ctx.options.resumeGraceMs ?? 10_000);
    for (const [a, b] of together) {
      const x = registry.seatOf(a);
      const y = registry.seatOf(b);
      if (x && y && x.clusterId !== y.clusterId)
        this.ctx.logEvent(
          'tabs-parted',
          `${a} and ${b} cannot reach each other: seated in clusters ${x.clusterId} and ${y.clusterId}`,
        );
    }
    membership.sendPlacements(registry.takeNewlyWaiting()); // they learn they wait (`unseated`)
    if (flags.placementsDirty) {
      for (const tab of registry.connected()) changed.add(tab.id);
      flags.placementsDirty = false;
    }
    const clusterIds = registry.clusters.map((c) => c.id);
    // minTabs only holds back the first start; later departures never stop training here
    const needed = flags.started ? 1 : (this.ctx.options.minTabs ?? 1);
    engine.setClusters(clusterIds);
    if (registry.connected().length < needed || clusterIds.length === 0) {
      this.setPhase('waiting');
      return false;
    }
    // every seated tab learns its (possibly new) place; cluster size or count changes move
    // partitions too, so send to all seated tabs when the cluster set changed
    membership.sendPlacements(changed.size > 0 ? registry.connected().map((t) => t.id) : []);
    flags.started = true;
    // the phase travels in the iteration frame's header
    this.setPhase('training');
    this.updateQuorum();
    return true;
  }

  /** Opens the iteration for the seated tabs (after seatForIteration said it can). */
  private openIteration(): void {
    const { registry } = this.ctx;
    this.ctx.metrics.clusters.set(registry.clusters.length);
    this.openedAt = performance.now();
    this.ctx.desk.startIteration(registry.clusters.map((c) => c.id));
    this.armSilenceWatch();
  }

  /** (Re)starts the patience a cluster's proposer gets in the current iteration. */
  private armSilenceWatch(): void {
    clearTimeout(this.silenceTimer);
    const iteration = this.ctx.engine.iteration;
    const sorted = [...this.recentIterationMs].sort((a, b) => a - b);
    const median = sorted.length === 0 ? 0 : sorted[sorted.length >> 1]!;
    const patience = Math.max(
      this.ctx.options.proposerPatienceMs ?? SILENT_PROPOSER_MIN_MS,
      SILENT_PROPOSER_FACTOR * median,
    );
    this.silenceTimer = setTimeout(() => this.checkSilentProposers(iteration), patience);
    this.silenceTimer.unref();
  }

  /**
   * Every live cluster that has neither a held nor a pending proposal for `iteration`: its
   * proposer is reported silent (any node may report; applying is idempotent).
   */
  private checkSilentProposers(iteration: number): void {
    const { flags, engine, shared } = this.ctx;
    if (flags.closing || engine.iteration !== iteration) return;
    // paused, quorum lost or Redis away: nobody is expected to propose; patience starts over
    if (flags.phase !== 'training' || !shared.available()) {
      this.armSilenceWatch();
      return;
    }
    for (const { clusterId, tabId } of this.ctx.desk.silentProposers())
      this.ctx.submit(this.ctx.command({ kind: 'proposer-silent', clusterId, iteration, tabId }));
    // the next proposer gets the same patience
    this.armSilenceWatch();
  }

  setPhase(phase: Phase): void {
    const { flags } = this.ctx;
    if (flags.phase === phase) return;
    const previous = flags.phase;
    flags.phase = phase;
    if (phase === 'quorum-lost')
      this.ctx.logEvent('quorum-lost', 'fewer than a majority of clusters have a live tab');
    if (previous === 'quorum-lost' && phase === 'training')
      this.ctx.logEvent('quorum-restored', 'a majority of clusters is live again');
    this.ctx.tabs.toAllHere('phase', phase);
    this.ctx.publishStatus();
  }

  updateQuorum(): void {
    const { flags, engine, registry } = this.ctx;
    if (flags.phase !== 'training' && flags.phase !== 'quorum-lost') return;
    const decision = engine.decide(registry.liveClusters(), performance.now());
    if (decision.action === 'quorum-lost') this.setPhase('quorum-lost');
    else if (flags.phase === 'quorum-lost') this.setPhase('training');
    this.ctx.metrics.liveClusters.set(registry.liveClusters().size);
  }

  private closable(): boolean {
    const { flags } = this.ctx;
    return !flags.closing && (flags.phase === 'training' || flags.phase === 'quorum-lost');
  }

  maybeClose(): void {
    if (!this.closable()) return;
    if (!this.ctx.shared.available()) return; // resumes when the shared state is back
    // only the lease holder closes; the others keep the quorum phase current
    if (!this.ctx.shared.holdsLease()) {
      this.updateQuorum();
      return;
    }
    const { engine, registry } = this.ctx;
    const now = performance.now();
    const decision = engine.decide(registry.liveClusters(), now);
    if (decision.action === 'close') {
      // The close runs as soon as this callback is done: a microtask, so not inside the
      // caller's effects, and before the next socket's messages. In the check phase
      // (setImmediate, as before) it waited behind every message already read: at 10,000 tabs a
      // poll phase lasted ~2.5 s (libuv reads up to 48 batches of 1,024 events before it moves
      // on), and a close decided in it waited up to 600 ms (docs/benchmarks.md). That bound on
      // a poll phase is also why closing inside it cannot keep the timers (engine.io
      // heartbeats, grace deadlines) from running: each close needs a new round of proposals,
      // thousands of events, before the next one.
      if (this.closeQueued) return;
      this.closeQueued = true;
      queueMicrotask(() => {
        this.closeQueued = false;
        if (this.stopped || !this.closable()) return;
        const still = engine.decide(registry.liveClusters(), performance.now());
        if (still.action === 'close') this.requestClose(now);
        else this.maybeClose();
      });
      return;
    }
    this.updateQuorum();
    if (decision.action === 'wait' && decision.until !== undefined) {
      clearTimeout(this.closeTimer);
      this.closeTimer = setTimeout(() => this.maybeClose(), Math.max(0, decision.until - now) + 1);
    }
  }

  holdClose(): void {
    clearTimeout(this.closeTimer);
  }

  forgetCloseRequest(): void {
    this.closeRequestedFor = -1;
  }

  /**
   * Computes the close of the current iteration and publishes it: every node (this one too)
   * adopts it where it lands in the log. Two nodes that both believed they held the lease
   * publish two closes of one iteration; the first adopted moves the iteration on and the
   * other then changes nothing.
   */
  private requestClose(decidedAt: number): void {
    const { engine, registry } = this.ctx;
    const iteration = engine.iteration;
    if (this.closeRequestedFor === iteration) return;
    let prepared: PreparedClose;
    try {
      prepared = engine.prepareClose();
    } catch (error) {
      this.ctx.logger.error({ err: error }, 'closing the iteration failed; proposals dropped');
      engine.setClusters(registry.clusters.map((c) => c.id));
      return;
    }
    this.closeRequestedFor = iteration;
    this.closeDecidedAt = decidedAt;
    const { residual: _residual, ...result } = prepared;
    const command = this.ctx.command({ kind: 'closed', ...result });
    this.published = { id: command.id, prepared };
    this.ctx.submit(command, (outcome) => {
      // not appended: decide again when the shared state is back
      if (outcome instanceof Error && this.closeRequestedFor === iteration) {
        this.closeRequestedFor = -1;
        if (this.published?.id === command.id) this.published = undefined;
      }
    });
  }

  applyClose(command: Extract<Command, { kind: 'closed' }>): void {
    const { engine, nodeId } = this.ctx;
    const own = command.node === nodeId;
    const prepared = this.published?.id === command.id ? this.published.prepared : undefined;
    if (prepared) this.published = undefined;
    // a close of another iteration, one published before a pause (or the last iteration) that
    // lands after it changes nothing; this node may decide again
    if (command.iteration !== engine.iteration + 1 || !this.closable()) {
      if (own && this.closeRequestedFor === command.iteration - 1) this.closeRequestedFor = -1;
      return;
    }
    const deltaNorm = engine.adopt(command, prepared?.residual);
    if (deltaNorm === undefined) return;
    // the close latency counts from this node's own decision, else from the command's arrival
    const decidedAt = own ? (this.closeDecidedAt ?? performance.now()) : performance.now();
    const { kind: _kind, id: _id, node: _node, at, ...result } = command;
    this.closed({ ...result, deltaNorm }, decidedAt, at, own);
  }

  /**
   * After the engine adopted a close. `own`: this node decided it (several nodes: only the
   * decider times the close).
   */
  private closed(closed: ClosedIteration, decidedAt: number, at: number, own: boolean): void {
    const { job, metrics } = this.ctx;
    clearTimeout(this.closeTimer);
    // taken now: startIfReady below restarts the iteration clock
    const iterationSeconds = (performance.now() - this.openedAt) / 1000;
    this.lastRounds = closed.rounds;
    this.recentIterationMs.push(iterationSeconds * 1000);
    if (this.recentIterationMs.length > ITERATION_HISTORY) this.recentIterationMs.shift();
    // proposals the close used are let go; one that came after it was computed stays held
    for (const clusterId of closed.contributors) this.ctx.proposals.heldFrames.delete(clusterId);
    this.ctx.records.journal(closed);
    const done = job.maxIterations !== undefined && closed.iteration >= job.maxIterations;
    // seats and placements for the new iteration go out before the iteration itself, so a
    // tab whose place changed never starts computing on its old partitions; the rest of the
    // opening waits until the iteration is on the wire (no tab message is read in between)
    const opens = !done && this.seatForIteration(at);
    this.ctx.broadcast.send(closed);
    if (own) metrics.roundClose.observe((performance.now() - decidedAt) / 1000);
    if (opens) this.openIteration();
    metrics.iterationSeconds.observe(iterationSeconds);
    // the whole swarm's loss and bytes, whichever node records it (node-share.ts)
    const swarm = new SwarmView(this.ctx);
    this.ctx.dashboardMetrics.recordIteration(
      {
        iteration: closed.iteration,
        at: Date.now(),
        trainingLoss: swarm.trainingLoss(),
        bytesSent: swarm.totals.bytesSent,
        fp32EquivalentBytes: swarm.totals.fp32EquivalentBytes,
      },
      iterationSeconds,
      closed.contributors,
    );
    this.ctx.proposals.followAutoStaleness();
    metrics.iteration.set(closed.iteration);
    this.ctx.logger.debug(
      {
        iteration: closed.iteration,
        contributors: closed.contributors,
        rounds: closed.rounds,
        spread: closed.spread,
      },
      'iteration closed',
    );
    this.ctx.records.afterClose(closed.iteration);
    if (done) {
      this.setPhase('done');
      if (this.ctx.shared.holdsLease()) void this.ctx.records.writeCheckpoint();
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.closeTimer);
    clearTimeout(this.silenceTimer);
  }
}
