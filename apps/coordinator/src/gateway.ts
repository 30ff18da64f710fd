/**
 * The tabs' socket.io events. Every event is untrusted: rate-limited per socket (links and
 * relayed frames have budgets of their own), checked against packages/protocol's schemas and
 * the sender's seat, and refused with a typed error code. What changes shared state becomes a
 * command (CoordinatorContext.submit); what only this node's connections need (signaling,
 * relayed frames, iteration requests) is answered here.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { TabRecord } from '@swarmgrad/core';
import {
  confirmationSchema,
  helloSchema,
  iterationRequestSchema,
  limits,
  linkReportSchema,
  maxUpdateFrameBytes,
  parseFrame,
  relayFrameSchema,
  decodePeerMessage,
  hasPeerMessageMagic,
  reportSchema,
  signalSchema,
  type ErrorCode,
  type MessageSchema,
  type WireError,
} from '@swarmgrad/protocol';
import type { Command } from './shared-state.ts';
import type { CoordinatorContext } from './context.ts';
import { AddressGate } from './addresses.ts';
import { iceRefreshMs, iceServersFor, welcomeIce } from './ice.ts';
import { HELLO_TIMEOUT_MS, type WorkerSocket } from './options.ts';

export class TabGateway {
  private readonly limiter: RateLimiterMemory;
  /** Per tab: link reports, and frames to relay (limits in packages/protocol events.ts). */
  private readonly linkLimiter: RateLimiterMemory;
  private readonly relayLimiter: RateLimiterMemory;
  /** Client address → address group (capped per cluster by placement), joins per group. */
  private readonly addresses: AddressGate;

  constructor(private readonly ctx: CoordinatorContext) {
    const budget = (burst: number, perSecond: number) =>
      new RateLimiterMemory({ points: burst, duration: burst / perSecond });
    this.limiter = budget(limits.eventBurst, limits.eventsPerSecond);
    this.linkLimiter = budget(limits.linkReportBurst, limits.linkReportsPerSecond);
    this.relayLimiter = budget(limits.relayFrameBurst, limits.relayFramesPerSecond);
    this.addresses = new AddressGate(ctx.options.addresses, () =>
      ctx.logger.warn(
        'a tab connected with a client-address header from a proxy that is not trusted: ' +
          'behind a reverse proxy, pass --trust-proxy <its address> or tabs are grouped by the proxy address',
      ),
    );
  }

  connect(socket: WorkerSocket): void {
    const { ctx } = this;
    let tab: TabRecord | undefined;
    /** A hello whose join command is on its way through the shared log (multi-node). */
    let joining = false;
    const helloTimer = setTimeout(() => {
      if (!tab) socket.disconnect(true);
    }, HELLO_TIMEOUT_MS);

    const refuse = (event: string, code: ErrorCode, message: string): WireError => {
      ctx.countRejected(code);
      const error = { code, message, event };
      ctx.logger.debug({ tab: tab?.id, ...error }, 'refused');
      return error;
    };
    const reject = (event: string, code: ErrorCode, message: string): void => {
      socket.emit('rejected', refuse(event, code, message));
    };

    /** A rate limiter's budget for `key`; refused as rate-limited when it is spent. */
    const withinBudget = async (
      event: string,
      limiter: RateLimiterMemory,
      key: string,
      message: string,
    ): Promise<boolean> => {
      try {
        await limiter.consume(key);
        return true;
      } catch {
        reject(event, 'rate-limited', message);
        return false;
      }
    };
    /** The socket's budget for any event; links and relayed frames have their own on top. */
    const allowed = (event: string): Promise<boolean> =>
      withinBudget(event, this.limiter, socket.id, 'too many events');
    /** `raw` as `schema` reads it, or undefined after refusing it as invalid-message. */
    const parse = <T>(event: string, schema: MessageSchema<T>, raw: unknown, fallback: string) => {
      const parsed = schema.safeParse(raw);
      if (parsed.success) return parsed.data;
      reject(event, 'invalid-message', parsed.error.issues[0]?.message ?? fallback);
      return undefined;
    };

    socket.on('hello', async (raw, ack) => {
      if (typeof ack !== 'function') return;
      if (!(await allowed('hello'))) return;
      if (tab || joining)
        return ack({ ok: false, error: refuse('hello', 'invalid-message', 'already said hello') });
      const parsed = helloSchema.safeParse(raw);
      if (!parsed.success) {
        return ack({
          ok: false,
          error: refuse('hello', 'invalid-message', parsed.error.issues[0]?.message ?? 'bad hello'),
        });
      }
      const hello = parsed.data;
      if (hello.fault !== undefined && ctx.options.allowFaultInjection !== true) {
        return ack({
          ok: false,
          error: refuse(
            'hello',
            'fault-injection-disabled',
            'this coordinator refuses fault-injection tabs',
          ),
        });
      }
      // one client address must not open tabs without bound (a resume opens none)
      const group = this.addresses.groupOf(
        this.addresses.clientAddress(socket.handshake.address, socket.handshake.headers),
      );
      const join = this.joinCommand(socket, hello, group);
      if (group !== undefined && !ctx.registry.tabs.has(join.tabId)) {
        joining = true;
        const admitted = await this.addresses.admitJoin(group);
        joining = false;
        if (!admitted.ok) {
          const seconds = Math.ceil(admitted.retryInMs / 1000);
          return ack({
            ok: false,
            error: refuse(
              'hello',
              'too-many-joins',
              `too many new tabs from ${group}: retry in ${seconds} s`,
            ),
          });
        }
        if (tab || !socket.connected) return;
      }
      clearTimeout(helloTimer);
      joining = true;
      // the join is applied by every node; here, at the point of applying it, the tab gets its
      // welcome (before any placement, which membership sends after admitting it)
      ctx.submit(join, (result) => {
        joining = false;
        if (result instanceof Error) {
          // the shared state is out of reach: the tab retries (socket.io reconnects)
          socket.disconnect(true);
          return;
        }
        const admitted = result as TabRecord;
        if (!socket.connected) {
          // gone while its join travelled: it leaves again
          ctx.submit(ctx.command({ kind: 'leave', tabId: admitted.id, socketId: socket.id }));
          return;
        }
        tab = admitted;
        ctx.tabs.welcome(admitted.id, socket);
        ack({
          ok: true,
          value: {
            tabId: admitted.id,
            resumeToken: admitted.resumeToken,
            job: ctx.job,
            jobId: ctx.jobId,
            dimension: ctx.dimension,
            iteration: ctx.engine.iteration,
            phase: ctx.effectivePhase(),
            learningRate: ctx.flags.learningRate,
            paramsUrl: '/api/params',
            manifestUrl: '/data/manifest.json',
            ...welcomeIce(ctx.options.ice, admitted.id),
            iterationKey: ctx.broadcast.iterationKey,
            vouchKey: ctx.vouchers.keyHexFor(admitted.id),
          },
        });
        void this.measureRtt(admitted, socket);
        this.refreshIceWhileConnected(socket, admitted.id);
        // a resumed tab gets back the list of peers whose frames the coordinator relays
        const relayed = ctx.relays.peersOf(admitted.id);
        if (relayed.length > 0) socket.emit('relay-peers', { peers: relayed });
      });
    });

    socket.on('signal', async (raw) => {
      if (!tab || !(await allowed('signal'))) return;
      const signal = parse('signal', signalSchema, raw, 'bad signal');
      if (signal === undefined) return;
      // a peer another node holds is reached through socket.io's Redis adapter
      if (
        !ctx.membership.coSeated(tab.id, signal.to) ||
        !ctx.tabs.deliver(signal.to, 'signal', { from: tab.id, data: signal.data })
      )
        reject('signal', 'not-in-cluster', `${signal.to} is not a peer in your cluster`);
    });

    socket.on('report', async (raw) => {
      if (!tab || !(await allowed('report'))) return;
      const report = parse('report', reportSchema, raw, 'bad report');
      if (report === undefined) return;
      const previous = tab.report;
      tab.report = report;
      tab.lastSeenAt = Date.now();
      if (report.state === 'quarantined' && previous?.state !== 'quarantined')
        ctx.logEvent('tab-quarantined', `${tab.id} reports it is quarantined by its cluster`);
      // what a tab reports about its peers is shared state (quarantine moves seats): a command
      // when it changes, which every node reviews alike
      const peers = [...new Set(report.quarantinedPeers ?? [])].sort();
      if (peers.join(',') !== (tab.suspects ?? []).join(',') && ctx.shared.available())
        ctx.submit(ctx.command({ kind: 'suspects', tabId: tab.id, peers }));
      const newBytes = Math.max(0, report.peerBytesSent - (previous?.peerBytesSent ?? 0));
      const newFp32 = Math.max(0, report.peerFp32Bytes - (previous?.peerFp32Bytes ?? 0));
      ctx.wire.count('peer', newBytes, newFp32);
    });

    socket.on('confirmation', async (raw) => {
      if (!tab || !(await allowed('confirmation'))) return;
      const c = parse('confirmation', confirmationSchema, raw, 'bad confirmation');
      if (c === undefined) return;
      const seat = ctx.registry.seatOf(tab.id);
      if (!seat || seat.clusterId !== c.clusterId) {
        reject('confirmation', 'not-in-cluster', `you are not in cluster ${c.clusterId}`);
        return;
      }
      ctx.submit(
        ctx.command({
          kind: 'confirmation',
          tabId: tab.id,
          clusterId: c.clusterId,
          iteration: c.iteration,
          proposer: c.proposer,
          answer:
            c.verdict === 'computed'
              ? { kind: 'computed', digest: c.digest }
              : { kind: 'abstain', reason: c.reason },
        }),
      );
    });

    socket.on('iteration-request', async (raw) => {
      if (!tab || !(await allowed('iteration-request'))) return;
      const request = parse('iteration-request', iterationRequestSchema, raw, 'bad request');
      if (request === undefined) return;
      ctx.broadcast.answerRequest(tab.id, socket, request.after);
    });

    socket.on('link', async (raw) => {
      if (!tab || !(await allowed('link'))) return;
      const from = tab;
      if (!(await withinBudget('link', this.linkLimiter, from.id, 'too many link reports'))) return;
      const report = parse('link', linkReportSchema, raw, 'bad link report');
      if (report === undefined) return;
      if (!ctx.membership.coSeated(from.id, report.peer)) {
        reject('link', 'not-in-cluster', `${report.peer} is not a peer in your cluster`);
        return;
      }
      if (report.state === 'connected') ctx.linksUp.set(from.id, report.peer, true);
      else ctx.linksUp.delete(from.id, report.peer);
      const change = ctx.relays.report(from.id, report.peer, report.state);
      // placement keeps tabs that cannot reach each other apart (every node alike: a command)
      const apart = report.state === 'failed' && change.relayed;
      if (apart !== ctx.registry.isApart(from.id, report.peer) && ctx.shared.available())
        ctx.submit(ctx.command({ kind: 'apart', a: from.id, b: report.peer, apart }));
      if (!change.changed) return;
      ctx.logEvent(
        change.relayed ? 'link-relayed' : 'link-direct',
        change.relayed
          ? `the link ${from.id} – ${report.peer} does not connect (${report.reason ?? report.state}, ${report.attempts} attempts): the coordinator relays its frames`
          : `the link ${from.id} – ${report.peer} connected: its frames go direct again`,
      );
      ctx.metrics.relayedPairs.set(ctx.relays.relayedPairs);
      ctx.membership.sendRelayPeers([from.id, report.peer]);
    });

    socket.on('relay-frame', async (rawMeta, rawFrame) => {
      if (!tab || !(await allowed('relay-frame'))) return;
      const from = tab;
      if (
        !(await withinBudget('relay-frame', this.relayLimiter, from.id, 'too many relayed frames'))
      )
        return;
      const meta = parse('relay-frame', relayFrameSchema, rawMeta, 'bad meta');
      if (meta === undefined) return;
      const to = meta.to;
      if (!(rawFrame instanceof Uint8Array)) {
        reject('relay-frame', 'invalid-message', 'the frame is not binary');
        return;
      }
      // a register frame of this job, no larger than any codec makes, or a peer message (a
      // confirm request or voucher, peer-message.ts); the receiving tab decodes it
      let fp32Bytes = 0;
      if (hasPeerMessageMagic(rawFrame)) {
        const message = decodePeerMessage(rawFrame);
        if (!message.ok) {
          reject('relay-frame', message.error.code, message.error.message);
          return;
        }
      } else {
        const maxFrameBytes = maxUpdateFrameBytes(ctx.dimension);
        if (rawFrame.byteLength > maxFrameBytes) {
          reject('relay-frame', 'payload-too-large', `frame of ${rawFrame.byteLength} bytes`);
          return;
        }
        const header = parseFrame(rawFrame, { maxFrameBytes });
        if (!header.ok || header.value.header.jobId !== ctx.jobId) {
          socket.emit(
            'rejected',
            header.ok
              ? refuse('relay-frame', 'wrong-job', 'a frame of another job')
              : refuse('relay-frame', header.error.code, header.error.message),
          );
          return;
        }
        fp32Bytes = 4 * header.value.header.dimension;
      }
      if (!ctx.membership.coSeated(from.id, to)) {
        reject('relay-frame', 'not-in-cluster', `${to} is not a peer in your cluster`);
        return;
      }
      if (!ctx.relays.isRelayed(from.id, to)) {
        reject('relay-frame', 'not-relayed', `the link to ${to} is not relayed`);
        return;
      }
      const frame = new Uint8Array(rawFrame);
      // the peer is away (its resume grace): it asks again (resend-register) if needed
      if (!ctx.tabs.deliver(to, 'relayed-frame', { from: from.id, frame })) return;
      ctx.wire.countRelayed(frame.byteLength, fp32Bytes);
    });

    socket.on('proposal', async (rawMeta, rawFrame, ack) => {
      if (typeof ack !== 'function') return;
      if (!(await allowed('proposal'))) {
        return ack({
          ok: false,
          error: { code: 'rate-limited', message: 'too many events', event: 'proposal' },
        });
      }
      if (!tab)
        return ack({ ok: false, error: refuse('proposal', 'unknown-tab', 'say hello first') });
      const from = tab;
      const checked = ctx.proposals.check(from, rawMeta, rawFrame);
      const answer = (
        result: { ok: true; counted: boolean } | { ok: false; code: ErrorCode; message: string },
      ): void => {
        if (!result.ok) {
          ctx.logEvent(
            'update-rejected',
            `proposal from ${from.id} refused: ${result.code} (${result.message})`,
          );
          ack({ ok: false, error: refuse('proposal', result.code, result.message) });
          return;
        }
        ack({ ok: true, value: { counted: result.counted } });
        ctx.iterations.maybeClose();
      };
      if (!checked.ok) return answer(checked);
      ctx.submit(checked.command, (result) =>
        answer(
          result instanceof Error
            ? { ok: false, code: 'paused', message: 'the shared state is out of reach' }
            : (result as Parameters<typeof answer>[0]),
        ),
      );
    });

    socket.on('disconnect', () => {
      clearTimeout(helloTimer);
      // an older connection of a resumed tab leaves nothing
      if (tab && tab.socketId === socket.id)
        ctx.submit(ctx.command({ kind: 'leave', tabId: tab.id, socketId: socket.id }));
    });
  }

  /**
   * Fresh TURN credentials for a connected tab before its welcome's expire (ice.ts): without
   * them a tab that stays for longer than their lifetime could open no new TURN link.
   */
  private refreshIceWhileConnected(socket: WorkerSocket, tabId: string): void {
    const every = iceRefreshMs(this.ctx.options.ice);
    if (every === undefined) return;
    const timer = setInterval(() => {
      if (!socket.connected) return clearInterval(timer);
      socket.emit('ice-servers', iceServersFor(this.ctx.options.ice, tabId));
    }, every);
    timer.unref();
    socket.once('disconnect', () => clearInterval(timer));
  }

  /** A join for this hello: a new identity, or the one its resume token names. */
  /**
   * A tab id no tab of the swarm holds: 48 random bits (32 bits collided about once per 90
   * swarms of 10,000 tabs, and a colliding join took over the other tab's record).
   */
  private newTabId(): string {
    for (;;) {
      const id = `tab-${randomBytes(6).toString('hex')}`;
      if (!this.ctx.registry.tabs.has(id)) return id;
    }
  }

  private joinCommand(
    socket: WorkerSocket,
    hello: ReturnType<typeof helloSchema.parse>,
    addressGroup: string | undefined,
  ): Extract<Command, { kind: 'join' }> {
    const known = hello.resumeToken
      ? this.ctx.registry.tabs.withResumeToken(hello.resumeToken)
      : undefined;
    return this.ctx.command({
      kind: 'join',
      tabId: known?.id ?? this.newTabId(),
      resumeToken: known?.resumeToken ?? randomBytes(18).toString('base64url'),
      helloKind: hello.kind,
      backend: hello.backend,
      fallbackAdapter: hello.fallbackAdapter,
      fault: hello.fault,
      socketId: socket.id,
      ...(addressGroup === undefined ? {} : { addressGroup }),
    });
  }

  private async measureRtt(tab: TabRecord, socket: WorkerSocket): Promise<void> {
    const started = performance.now();
    try {
      await socket.timeout(5000).emitWithAck('ping');
      // the rtt placement strategy reads it: shared like every other placement input
      this.ctx.submit(
        this.ctx.command({ kind: 'rtt', tabId: tab.id, rttMs: performance.now() - started }),
      );
    } catch {
      // no answer: leave unmeasured; rtt placement seats it last
    }
  }
}

/** Compares secrets in constant time. */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
