/**
 * Load generator of the coordinator bench (bench/coordinator.ts starts several of these as child
 * processes; not a bench of its own). One process holds `count` simulated tabs: real socket.io
 * clients on the `/worker` namespace, WebSocket transport, each with its own connection. A tab
 * says hello, answers `ping`, and when it is its cluster's proposer it proposes at every
 * `iteration` event (and when it becomes proposer mid-iteration), its own register as the
 * proposal's one input; with `vouchSecret` it brings its members' vouchers, signed for them
 * (bench/coordinator.ts --confirmations), and otherwise the members answer the coordinator's
 * confirm requests (a member asked answers in either mode). Tabs do not keep the base:
 * the bench measures the coordinator, not learning, so proposals are small random updates
 * (one-bit coded, so the clusters' proposals differ and the agreement runs real rounds).
 *
 * Configuration: one JSON argument (see LoadConfig). Talks to the parent over the IPC channel:
 * sends `progress` every second, answers `stats` requests, exits on `stop`. Times are
 * process.hrtime (CLOCK_MONOTONIC, shared by all processes of the machine) in ms.
 */
import { createHmac } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { tabParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';
import {
  createRng,
  encodeToFrame,
  frameDigest,
  gaussian,
  getCodec,
  voucherMessage,
  vouchKeyMessage,
  type CodecEncoder,
  type VoucherFields,
} from '@swarmgrad/core';
import {
  PROTOCOL_VERSION,
  parseIterationFrame,
  type Placement,
  type Welcome,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';

type ClientSocket = Socket<WorkerServerToClient, WorkerClientToServer>;

/**
 * A member's voucher MAC, made here for it (it would make it with its own key): node:crypto,
 * with core's message formats.
 */
function voucherMac(secretHex: string, tabId: string, fields: VoucherFields): string {
  const key = createHmac('sha256', Buffer.from(secretHex, 'hex'))
    .update(vouchKeyMessage(tabId))
    .digest();
  return createHmac('sha256', key).update(voucherMessage(fields)).digest('hex');
}

export interface LoadConfig {
  /** Coordinator URL; with several (nodes of one multi-node coordinator), tab i uses url i mod K. */
  url: string | string[];
  /** Tabs this process opens. */
  count: number;
  /** The coordinator's voucher secret (hex): proposers bring their members' vouchers. */
  vouchSecret?: string;
  /** New connections per second, and handshakes (connect + hello) in flight at most. */
  rate: number;
  maxPending: number;
  seed: number;
  /** Delay between an iteration event and the proposal, ms (0: at once). */
  thinkMs: number;
  /** Propose from the first connection on; else only after the parent sends `propose`. */
  proposeFromStart: boolean;
  /**
   * Report a connected link to every cluster peer, once per peer, as a tab's mesh does: the
   * coordinator relays iteration frames only over links reported up (cluster dissemination).
   */
  reportLinks: boolean;
}

/** Per base iteration, what this process saw (ms, monotonic clock). */
export interface IterationTimes {
  /** Proposals sent for this base iteration, and their send times. */
  sent: number[];
  /** First and last time a tab of this process received the iteration event, and how many. */
  firstRecv?: number;
  lastRecv?: number;
  received: number;
}

export type LoadMessage =
  | {
      type: 'progress';
      connected: number;
      welcomed: number;
      /** Tabs given up after `attempts` failed connections, and failed attempts retried. */
      failed: number;
      retried: number;
      disconnected: number;
      /** Disconnections by socket.io reason. */
      disconnects: Record<string, number>;
      errors: string[];
      /** Largest event-loop lag since the previous progress message, ms. */
      lagMs: number;
    }
  | {
      type: 'stats';
      iterations: Record<number, IterationTimes>;
      /** Answers to the proposals on the window's bases, by kind. */
      acks: Record<string, number>;
    };

export type ParentMessage =
  { type: 'propose' } | { type: 'stats'; from: number; to: number } | { type: 'stop' };

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

function main(config: LoadConfig): void {
  const send = (message: LoadMessage) => process.send?.(message);
  const times = new Map<number, IterationTimes>();
  const timesOf = (iteration: number): IterationTimes => {
    let entry = times.get(iteration);
    if (!entry) {
      entry = { sent: [], received: 0 };
      times.set(iteration, entry);
    }
    return entry;
  };
  /** Per base iteration: the answers to proposals on it, by kind. */
  const acks = new Map<number, Record<string, number>>();
  const countAck = (base: number, key: string) => {
    const of = acks.get(base) ?? {};
    of[key] = (of[key] ?? 0) + 1;
    acks.set(base, of);
  };
  const errors: string[] = [];
  const disconnects: Record<string, number> = {};
  const sockets: ClientSocket[] = [];
  let proposing = config.proposeFromStart;
  const vouchSecret = config.vouchSecret;
  /** Per tab: propose now if it is a proposer (when proposing starts). */
  const kicks: (() => void)[] = [];
  let connected = 0;
  let welcomed = 0;
  let failed = 0;
  let disconnected = 0;

  // a few random update vectors, shared by this process's proposers; one encoder (its error
  // feedback state is irrelevant here)
  let encoder: CodecEncoder | undefined;
  let updates: Float32Array[] = [];
  const setUp = (welcome: Welcome) => {
    if (encoder) return;
    const codec = getCodec(welcome.job.codec.name);
    encoder = codec.createEncoder(welcome.dimension, {
      ...(codec.defaultBlockSize > 0 ? { blockSize: welcome.job.codec.blockSize } : {}),
    });
    const rng = createRng(config.seed);
    updates = Array.from({ length: 8 }, () => {
      const u = new Float32Array(welcome.dimension);
      for (let i = 0; i < u.length; i++) u[i] = 1e-3 * gaussian(rng);
      return u;
    });
  };

  /** A tab whose connection or hello failed is retried this many times, then counted failed. */
  const attempts = 3;
  let pending = 0;
  const retries: number[] = [];
  let retried = 0;
  const attemptFailed = (attempt: number, why: string) => {
    pending--;
    if (errors.length < 5) errors.push(why);
    if (attempt < attempts) {
      retried++;
      retries.push(attempt + 1);
    } else failed++;
  };

  const urls = Array.isArray(config.url) ? config.url : [config.url];
  let dealt = 0;
  const open = (attempt: number) => {
    pending++;
    const url = urls[dealt++ % urls.length]!;
    const socket: ClientSocket = io(`${url}${WORKER_NAMESPACE}`, {
      transports: ['websocket'],
      // the iteration arrives as one binary message (packages/protocol socket-parser.ts)
      parser: tabParser,
      reconnection: false,
      forceNew: true,
      timeout: 60_000,
    });
    sockets.push(socket);
    let welcome: Welcome | undefined;
    let placement: Placement | undefined;
    let iteration = 0;
    const propose = (base: number) => {
      if (!proposing || !welcome || !placement?.proposer || !encoder) return;
      const update = updates[placement.clusterId % updates.length]!;
      const frame = encodeToFrame(encoder, update, {
        jobId: welcome.jobId,
        iteration: base,
        round: 0,
        senderSlot: placement.slot,
      });
      timesOf(base).sent.push(now());
      // the proposal is the proposer's own register: its one input (see the confirm handler)
      const digest = frameDigest(frame);
      const meta = {
        clusterId: placement.clusterId,
        contributors: [placement.slot],
        inputs: [{ slot: placement.slot, digest }],
        ...(vouchSecret === undefined
          ? {}
          : {
              vouchers: placement.peers.map(({ tabId }) => ({
                tabId,
                digest,
                mac: voucherMac(vouchSecret, tabId, {
                  jobId: welcome!.jobId,
                  clusterId: placement!.clusterId,
                  iteration: base,
                  proposer: welcome!.tabId,
                  digest,
                }),
              })),
            }),
      };
      socket
        .timeout(60_000)
        .emitWithAck('proposal', meta, frame)
        .then((answer) => {
          const key = answer.ok
            ? answer.value.counted
              ? 'counted'
              : 'not-counted'
            : answer.error.code;
          countAck(base, key);
        })
        .catch(() => countAck(base, 'no-answer'));
    };
    const proposeLater = (base: number) => {
      if (config.thinkMs > 0) setTimeout(() => propose(base), config.thinkMs);
      else propose(base);
    };
    kicks.push(() => {
      if (welcome && placement?.proposer) proposeLater(iteration);
    });
    socket.on('ping', (ack) => ack());
    // a member asked to confirm its proposer's proposal: the proposal is the proposer's single
    // input register (above), so the digest a member recomputing it would get is that input's.
    // The bench's tabs hold no registers; they confirm what the proposer says, as honest members
    // would, so the coordinator's confirmation path runs as in a real swarm
    socket.on('confirm', (request) => {
      const input = request.inputs[0];
      if (input === undefined) return;
      socket.emit('confirmation', {
        verdict: 'computed',
        clusterId: request.clusterId,
        iteration: request.iteration,
        proposer: request.proposer,
        digest: input.digest,
      });
    });
    socket.on('connect', () => {
      connected++;
      socket
        .timeout(60_000)
        .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node', backend: 'cpu' })
        .then((answer) => {
          if (!answer.ok) {
            socket.disconnect();
            attemptFailed(attempt, `hello: ${answer.error.code}`);
            return;
          }
          pending--;
          const value = answer.value;
          welcome = value;
          iteration = Math.max(iteration, value.iteration);
          setUp(value);
          welcomed++;
          if (placement?.proposer) proposeLater(iteration);
        })
        .catch((error: unknown) => {
          socket.disconnect();
          attemptFailed(attempt, `hello: ${String(error)}`);
        });
    });
    socket.on('connect_error', (error) => {
      // engine.io wraps the transport's error: the cause is in `description`
      const cause = (error as { description?: { message?: string; error?: Error } }).description;
      const detail = cause?.error?.message ?? cause?.message;
      attemptFailed(attempt, `connect: ${error.message}${detail ? ` (${detail})` : ''}`);
    });
    let lastPing = now();
    let lastPacket = now();
    socket.io.on('open', () => {
      socket.io.engine.on('ping', () => (lastPing = now()));
      socket.io.engine.on('packet', () => (lastPacket = now()));
    });
    socket.on('disconnect', (reason) => {
      disconnected++;
      connected--;
      disconnects[reason] = (disconnects[reason] ?? 0) + 1;
      if (errors.length < 5)
        errors.push(
          `disconnect (${reason}) ${(now() - lastPing).toFixed(0)} ms after the last ping, ` +
            `${(now() - lastPacket).toFixed(0)} ms after the last packet`,
        );
    });
    const linked = new Set<string>();
    socket.on('placement', (next) => {
      const wasProposer = placement?.proposer === true;
      placement = next;
      if (config.reportLinks)
        for (const peer of next.peers) {
          if (linked.has(peer.tabId) || peer.tabId === welcome?.tabId) continue;
          linked.add(peer.tabId);
          socket.emit('link', { peer: peer.tabId, state: 'connected', attempts: 0 });
        }
      // took over as proposer mid-iteration (new cluster, or the previous proposer left)
      if (next.proposer && !wasProposer && welcome) proposeLater(iteration);
    });
    socket.on('iteration', (frame) => {
      const t = now();
      // tabs do not keep the base: the header is all they read (the delta is not decoded)
      const parsed = parseIterationFrame(frame);
      if (!parsed.ok) {
        if (errors.length < 5) errors.push(`iteration frame: ${parsed.error.code}`);
        return;
      }
      const start = parsed.value;
      const entry = timesOf(start.iteration);
      entry.firstRecv ??= t;
      entry.lastRecv = t;
      entry.received++;
      if (start.iteration <= iteration) return;
      iteration = start.iteration;
      if (placement?.proposer) proposeLater(iteration);
    });
  };

  // ramp: at most `rate` new connections per second (20 steps a second), and at most
  // `maxPending` handshakes in flight, so a busy coordinator is not flooded (its accept queue
  // overflows and connections are reset); failed tabs are retried first
  let opened = 0;
  const perStep = Math.max(1, Math.round(config.rate / 20));
  const ramp = setInterval(() => {
    for (let i = 0; i < perStep && pending < config.maxPending; i++) {
      const retry = retries.shift();
      if (retry !== undefined) open(retry);
      else if (opened < config.count) {
        opened++;
        open(1);
      } else break;
    }
    if (opened >= config.count && retries.length === 0 && pending === 0) clearInterval(ramp);
  }, 50);

  // event-loop lag of this process: the largest timer delay since the last progress report
  let lagMs = 0;
  let tick = now();
  const lagTimer = setInterval(() => {
    const t = now();
    lagMs = Math.max(lagMs, t - tick - 100);
    tick = t;
  }, 100);
  const takeLag = () => {
    const lag = lagMs;
    lagMs = 0;
    return lag;
  };
  const progress = setInterval(
    () =>
      send({
        type: 'progress',
        connected,
        welcomed,
        failed,
        retried,
        disconnected,
        disconnects: { ...disconnects },
        errors: [...errors],
        lagMs: takeLag(),
      }),
    1000,
  );

  process.on('message', (message: ParentMessage) => {
    if (message.type === 'propose') {
      proposing = true;
      for (const kick of kicks) kick();
    } else if (message.type === 'stats') {
      const iterations: Record<number, IterationTimes> = {};
      for (const [iteration, entry] of times) {
        if (iteration >= message.from && iteration <= message.to) iterations[iteration] = entry;
      }
      const windowAcks: Record<string, number> = {};
      for (const [base, of] of acks) {
        if (base < message.from || base > message.to) continue;
        for (const [key, count] of Object.entries(of))
          windowAcks[key] = (windowAcks[key] ?? 0) + count;
      }
      send({ type: 'stats', iterations, acks: windowAcks });
    } else if (message.type === 'stop') {
      clearInterval(ramp);
      clearInterval(progress);
      clearInterval(lagTimer);
      for (const socket of sockets) socket.disconnect();
      setTimeout(() => process.exit(0), 200);
    }
  });
  // the parent went away: do not linger
  process.on('disconnect', () => process.exit(0));
}

const raw = process.argv[2];
if (raw === undefined) {
  console.error('usage: coordinator-load.ts <json config> (started by bench/coordinator.ts)');
  process.exit(2);
}
main(JSON.parse(raw) as LoadConfig);
