/**
 * The tab's socket.io connection to the coordinator (namespace /worker, WebSocket only), and the
 * agreed parameters it keeps in step with it.
 *
 * Guarantees
 * - hello on every (re)connection, with the resumeToken of the last welcome so the coordinator
 *   gives the tab its seat back; socket.io reconnection is on (with several URLs, a few attempts
 *   per URL, then the next one, round robin); a server-side disconnect (coordinator restart) is
 *   retried too. `ping` is answered at once (the coordinator's RTT probe).
 * - The base: fetched from the welcome's paramsUrl (an fp32 frame stamped with its iteration),
 *   then moved by the `iteration` frames (one binary message each, packages/protocol
 *   iteration-frame.ts and socket-parser.ts; validated, bounded by the model's dimension) strictly
 *   in order, each decoded into zeros and added
 *   (the coordinator's own arithmetic, so both hold bit-identical bases). A missing delta, an
 *   undecodable one (or a malformed iteration frame), or a welcome after a reconnect at another
 *   iteration triggers a refetch;
 *   deltas arriving meanwhile are queued and replayed on top.
 * - Iteration frames come from the coordinator's socket or, with cluster dissemination, from a
 *   peer (the cluster's relay, `acceptPeerIteration`): those are applied only when the
 *   coordinator's signature verifies under the welcome's `iterationKey`, in arrival order with
 *   the socket's. A frame flagged FORWARD by the coordinator is emitted as `forward` (this tab
 *   relays it to its cluster). A tab that sees no new iteration for a while (`stallMs`, or a
 *   peer's register for a newer base: `expectIteration`) asks the coordinator for the frames it
 *   missed (`iteration-request`), so a relay that left or withholds costs a delay, never a stall.
 * - Every event payload is typed by packages/protocol (WorkerClientToServer/ServerToClient), and
 *   every message from the coordinator is validated against its schema there
 *   (serverMessageSchemas): one that does not parse is dropped, logged and counted
 *   (`invalidMessages`); a welcome that does not parse ends the client ('fatal', invalid-message).
 */
import { io, type Socket } from 'socket.io-client';
import { decodeFrameInto } from '@swarmgrad/core';
import { tabParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';
import {
  PROTOCOL_VERSION,
  alignedBytes,
  confirmRequestSchema,
  forwardedSignalSchema,
  iceServersSchema,
  phaseSchema,
  placementSchema,
  relayPeersSchema,
  relayedFrameSchema,
  welcomeSchema,
  wireErrorSchema,
  type MessageSchema,
  importIterationKey,
  KEPT_ITERATION_FRAMES,
  limits,
  maxIterationFrameBytes,
  maxUpdateFrameBytes,
  parseIterationFrame,
  verifyIterationFrame,
  type IterationKey,
  type Confirmation,
  type ConfirmRequest,
  type Ack,
  type FaultMode,
  type IceServer,
  type IterationStart,
  type LinkReport,
  type Phase,
  type Placement,
  type ProposalMeta,
  type SignalMessage,
  type TabReport,
  type Welcome,
  type WireError,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';
import { EventBudget } from './event-budget.ts';
import { Emitter, sleep, type Clock, type Logger } from './runtime.ts';

type ClientSocket = Socket<WorkerServerToClient, WorkerClientToServer>;

export interface HelloFields {
  kind: 'browser' | 'node';
  backend: 'webgpu' | 'webgl' | 'wasm' | 'cpu' | 'none';
  fallbackAdapter?: boolean;
  fault?: FaultMode;
}

export interface CoordinatorClientOptions {
  urls: readonly string[];
  hello: () => HelloFields;
  logger: Logger;
  clock: Clock;
  fetch?: typeof fetch;
  /** socket.io reconnection (default true). */
  reconnection?: boolean;
  /** With several URLs: failed attempts before moving to the next (default 3). */
  attemptsPerUrl?: number;
  /** Least wait for the next iteration before asking for it (default MIN_STALL_MS). */
  minStallMs?: number;
}

export interface BaseMoved {
  iteration: number;
  learningRate: number;
  phase: Phase;
  /** Reached by a full parameter download rather than a delta. */
  resynced: boolean;
}

export type ClientEvents = {
  welcome: (welcome: Welcome, info: { reconnect: boolean; newIdentity: boolean }) => void;
  placement: (placement: Placement) => void;
  /** The coordinator asks this tab to recompute a peer's proposal (core swarm/proposal.ts). */
  confirm: (request: ConfirmRequest) => void;
  base: (moved: BaseMoved) => void;
  signal: (message: { from: string; data: unknown }) => void;
  phase: (phase: Phase) => void;
  rejected: (error: WireError) => void;
  connection: (connected: boolean) => void;
  /** A fatal refusal (the coordinator refused the hello). */
  fatal: (error: WireError) => void;
  /** The peers whose frames the coordinator relays for this tab (their link does not connect). */
  relayPeers: (peers: string[]) => void;
  /** A frame a peer sent through the coordinator (8-byte aligned; not validated yet). */
  relayedFrame: (from: string, frame: Uint8Array) => void;
  /** Fresh STUN/TURN servers from the coordinator (its TURN credentials expire). */
  iceServers: (servers: IceServer[]) => void;
  /** An iteration frame this tab relays to its cluster (the coordinator flagged it FORWARD). */
  forward: (frame: Uint8Array) => void;
};

export interface IterationFrameStats {
  /** Applied from the coordinator's socket. */
  fromCoordinator: number;
  /** Applied from a peer, its coordinator signature verified. */
  fromPeers: number;
  /** From peers, dropped: unparsable or not signed by the coordinator. */
  refused: number;
  /** `iteration-request`s sent. */
  requests: number;
  /** Forwarded to peers (the worker counts these). */
  forwarded: number;
}

/** The least wait for a next iteration before asking the coordinator for it. */
const MIN_STALL_MS = 3000;
/** … or this many times the recent median interval between iterations, whichever is longer. */
const STALL_FACTOR = 4;
const MAX_STALL_MS = 30_000;
/** Requests for the same missing iteration are at least this far apart. */
const REQUEST_SPACING_MS = 1000;
/**
 * A frame that arrived ahead of a missing one waits this long for the gap to be filled (the
 * coordinator answers the tab's request) before the tab downloads the parameters instead.
 */
const GAP_WAIT_MS = 3 * REQUEST_SPACING_MS;

export type ProposalAnswer = { ok: true; counted: boolean } | { ok: false; error: WireError };

export class CoordinatorClient extends Emitter<ClientEvents> {
  private readonly options: CoordinatorClientOptions;
  private readonly fetchImpl: typeof fetch;
  private socket: ClientSocket | undefined;
  private urlIndex = 0;
  private closed = false;
  private resumeToken: string | undefined;
  private welcomeValue: Welcome | undefined;
  private baseValue: Float32Array | undefined;
  private iterationValue = -1;
  private learningRateValue = 0;
  private stalenessValue: number | undefined;
  private phaseValue: Phase = 'waiting';
  private invalidMessagesValue = 0;
  private syncing = false;
  private queued: IterationStart[] = [];
  private beforeWelcome: (() => void)[] = [];
  private welcomed = false;
  private scratch: Float32Array | undefined;
  /** The coordinator's key for iteration frames a peer forwards (undefined: none accepted). */
  private iterationKey: Promise<IterationKey | undefined> | undefined;
  /** Frames in order: a peer's waits for its signature check, the socket's behind it. */
  private frameChain: Promise<void> = Promise.resolve();
  private framesInChain = 0;
  private peerIterationsRejected = 0;
  private iterationRequests = 0;
  private readonly appliedFrom = { coordinator: 0, peer: 0 };
  private lastRequest: { after: number; at: number } | undefined;
  private stallTimer: unknown;
  private expectTimer: unknown;
  /**
   * Frames that arrived ahead of a missing one (a relay's frame overtaken by the coordinator's
   * next one), by iteration, while the tab asks for the gap (fillGap).
   */
  private readonly ahead = new Map<number, IterationStart>();
  private gapTimer: unknown;
  private stallMs = 0;
  private lastIterationAt: number | undefined;
  private readonly intervals: number[] = [];
  private firstWelcome:
    { resolve: (w: Welcome) => void; reject: (e: Error & { code?: string }) => void } | undefined;
  /** What this tab sends the coordinator, kept within its per-connection budget. */
  private readonly budget: EventBudget;
  /** Counts socket.io connections (a reconnection is a new one, with a new budget). */
  private connection = 0;

  constructor(options: CoordinatorClientOptions) {
    super();
    if (options.urls.length === 0) throw new RangeError('at least one coordinator URL');
    this.options = options;
    // 90 % of the coordinator's budget (protocol limits), over the same window
    this.budget = new EventBudget(
      options.clock,
      Math.floor(0.9 * limits.eventBurst),
      (1000 * limits.eventBurst) / limits.eventsPerSecond,
    );
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The coordinator URL in use (origin, no namespace). */
  get url(): string {
    return this.options.urls[this.urlIndex]!.replace(/\/+$/, '');
  }

  get connected(): boolean {
    return this.socket?.connected === true && this.welcomed;
  }

  get welcome(): Welcome | undefined {
    return this.welcomeValue;
  }

  /** The agreed parameters of `iteration` (live array: do not modify). */
  get base(): Float32Array | undefined {
    return this.syncing ? undefined : this.baseValue;
  }

  get iteration(): number {
    return this.iterationValue;
  }

  get learningRate(): number {
    return this.learningRateValue;
  }

  /** The coordinator's staleness threshold S as its newest iteration frame stated it. */
  get stalenessThreshold(): number | undefined {
    return this.stalenessValue;
  }

  get phase(): Phase {
    return this.phaseValue;
  }

  /** Connects and resolves with the first welcome (rejects if the hello is refused). */
  start(): Promise<Welcome> {
    return new Promise<Welcome>((resolve, reject) => {
      this.firstWelcome = { resolve, reject };
      this.connectTo(this.urlIndex);
    });
  }

  signal(to: string, data: SignalMessage['data']): void {
    this.paced(
      () => this.socket?.connected === true,
      (socket) => socket.emit('signal', { to, data }),
    );
  }

  /** Tells the coordinator a link of the cluster failed or came up (issue 14, item 3). */
  linkReport(report: LinkReport): void {
    this.paced(
      () => this.connected,
      (socket) => socket.emit('link', report),
    );
  }

  /** Sends a frame to a relayed peer through the coordinator (lost when disconnected). */
  relayFrame(to: string, frame: Uint8Array): void {
    this.paced(
      () => this.connected,
      (socket) => socket.emit('relay-frame', { to }, frame),
    );
  }

  report(report: TabReport): void {
    this.paced(
      () => this.connected,
      (socket) => socket.emit('report', report),
    );
  }

  /** Answers a confirm request (lost when disconnected: the coordinator then stops waiting). */
  confirm(answer: Confirmation): void {
    this.paced(
      () => this.connected,
      (socket) => socket.emit('confirmation', answer),
    );
  }

  /**
   * Sends through the event budget, on the connection it was asked on: lost if that connection
   * went down meanwhile (as a send on a closed socket is).
   */
  private paced(ready: () => boolean, send: (socket: ClientSocket) => void): void {
    if (!ready()) return;
    const connection = this.connection;
    this.budget.run(() => {
      if (connection === this.connection && ready()) send(this.socket!);
    });
  }

  async propose(meta: ProposalMeta, frame: Uint8Array): Promise<ProposalAnswer> {
    const socket = this.socket;
    if (!socket?.connected || !this.welcomed) {
      return {
        ok: false,
        error: { code: 'internal', message: 'not connected', event: 'proposal' },
      };
    }
    const connection = this.connection;
    await this.budget.turn();
    if (connection !== this.connection || !this.connected) {
      return {
        ok: false,
        error: { code: 'internal', message: 'not connected', event: 'proposal' },
      };
    }
    try {
      const answer = await socket.timeout(10_000).emitWithAck('proposal', meta, frame);
      return answer.ok ? { ok: true, counted: answer.value.counted } : answer;
    } catch {
      return {
        ok: false,
        error: { code: 'internal', message: 'no answer to the proposal', event: 'proposal' },
      };
    }
  }

  /** GET a path of the coordinator's HTTP API. */
  async get(path: string): Promise<Response> {
    const response = await this.fetchImpl(`${this.url}${path}`);
    if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
    return response;
  }

  close(): void {
    this.closed = true;
    for (const timer of [this.stallTimer, this.expectTimer, this.gapTimer])
      if (timer !== undefined) this.options.clock.clearTimeout(timer);
    this.stallTimer = this.expectTimer = this.gapTimer = undefined;
    this.firstWelcome?.reject(
      Object.assign(new Error('closed before the welcome'), { code: 'closed' }),
    );
    this.firstWelcome = undefined;
    this.socket?.removeAllListeners();
    this.socket?.io.removeAllListeners();
    this.socket?.disconnect();
    this.socket = undefined;
    this.connection++;
    this.budget.reset();
    this.removeAllListeners();
  }

  // ---------------------------------------------------------------------------------------

  private connectTo(index: number): void {
    if (this.closed) return;
    this.urlIndex = index % this.options.urls.length;
    const several = this.options.urls.length > 1;
    const reconnection = this.options.reconnection ?? true;
    const socket: ClientSocket = io(`${this.url}${WORKER_NAMESPACE}`, {
      transports: ['websocket'],
      // iteration frames arrive as one binary message (packages/protocol socket-parser.ts)
      parser: tabParser,
      forceNew: true,
      reconnection,
      reconnectionAttempts: several ? (this.options.attemptsPerUrl ?? 3) : Infinity,
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
      timeout: 10_000,
    });
    this.socket = socket;
    socket.on('connect', () => {
      // a new connection (socket.io reconnections included) has a fresh budget at the coordinator
      this.connection++;
      this.budget.reset();
      this.sayHello(socket);
    });
    socket.on('disconnect', (reason) => {
      this.welcomed = false;
      this.emit('connection', false);
      this.options.logger.warn({ reason, url: this.url }, 'coordinator connection lost');
      // a server-side disconnect is not retried by socket.io: the coordinator restarted or
      // dropped a ghost connection; come back after a pause
      if (reason === 'io server disconnect' && reconnection && !this.closed) {
        void sleep(this.options.clock, 1000).then(() => {
          if (!this.closed && this.socket === socket && !socket.connected) socket.connect();
        });
      }
    });
    socket.on('connect_error', (error) => {
      this.options.logger.debug({ url: this.url, error: error.message }, 'connect error');
      if (!reconnection && this.firstWelcome) {
        this.firstWelcome.reject(error);
        this.firstWelcome = undefined;
      }
    });
    socket.io.on('reconnect_failed', () => {
      if (this.closed || this.socket !== socket) return;
      socket.removeAllListeners();
      socket.io.removeAllListeners();
      socket.disconnect();
      this.options.logger.warn({ url: this.url }, 'coordinator unreachable, trying the next URL');
      this.connectTo(this.urlIndex + 1);
    });
    socket.on('ping', (ack) => {
      if (typeof ack === 'function') ack();
    });
    // every message from the coordinator is checked against its protocol schema; one that
    // does not parse is dropped (logged and counted), never acted on
    socket.on('placement', (raw) => {
      const placement = this.accept('placement', placementSchema, raw);
      if (placement) this.whenWelcomed(() => this.emit('placement', placement));
    });
    socket.on('iteration', (frame) => this.whenWelcomed(() => this.onIterationFrame(frame)));
    socket.on('confirm', (raw) => {
      const request = this.accept('confirm', confirmRequestSchema, raw);
      if (request) this.whenWelcomed(() => this.emit('confirm', request));
    });
    socket.on('signal', (raw) => {
      const message = this.accept('signal', forwardedSignalSchema, raw);
      if (message) this.emit('signal', message);
    });
    socket.on('relay-peers', (raw) => {
      const info = this.accept('relay-peers', relayPeersSchema, raw);
      if (info) this.emit('relayPeers', info.peers);
    });
    socket.on('relayed-frame', (raw) => {
      const message = this.accept('relayed-frame', relayedFrameSchema, raw);
      if (message) this.emit('relayedFrame', message.from, message.frame);
    });
    socket.on('ice-servers', (raw) => {
      const servers = this.accept('ice-servers', iceServersSchema, raw);
      if (servers === undefined || !this.welcomeValue) return;
      this.welcomeValue.iceServers = servers;
      this.emit('iceServers', servers);
    });
    socket.on('phase', (raw) => {
      const phase = this.accept('phase', phaseSchema, raw);
      if (phase === undefined) return;
      this.phaseValue = phase;
      this.emit('phase', phase);
    });
    socket.on('rejected', (raw) => {
      const error = this.accept('rejected', wireErrorSchema, raw);
      if (!error) return;
      this.options.logger.warn({ ...error }, 'coordinator rejected a message');
      this.emit('rejected', error);
    });
  }

  /** The message if it parses; otherwise undefined, logged and counted in `invalidMessages`. */
  private accept<T>(event: string, schema: MessageSchema<T>, raw: unknown): T | undefined {
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data;
    this.invalidMessagesValue++;
    const issue = parsed.error.issues[0];
    this.options.logger.warn(
      { event, issue: issue ? `${issue.path.join('.') || '(message)'}: ${issue.message}` : '' },
      'dropping a malformed message from the coordinator',
    );
    return undefined;
  }

  /** Messages from the coordinator dropped because they did not parse. */
  get invalidMessages(): number {
    return this.invalidMessagesValue;
  }

  private whenWelcomed(action: () => void): void {
    if (this.welcomed) action();
    else this.beforeWelcome.push(action);
  }

  private sayHello(socket: ClientSocket): void {
    const fields = this.options.hello();
    const hello = {
      protocolVersion: PROTOCOL_VERSION,
      ...fields,
      ...(this.resumeToken === undefined ? {} : { resumeToken: this.resumeToken }),
    };
    // The answer is handled in the ack callback itself, not after an `await`: socket.io runs a
    // callback as its packet is read, and a 'phase' the coordinator sent right after the
    // welcome is dispatched before an awaiting continuation would run, so the welcome's older
    // phase overwrote it. A tab seated after a coordinator restart then stayed in 'waiting'
    // while the swarm trained, and its cluster never proposed (coordinator-restart unit test).
    socket
      .timeout(10_000)
      .emit('hello', hello, (error: Error | null, answer: Parameters<Ack<Welcome>>[0]) => {
        if (error) {
          if (this.socket === socket && socket.connected) {
            this.options.logger.warn({}, 'no welcome: reconnecting');
            socket.disconnect().connect();
          }
          return;
        }
        this.onHelloAnswer(socket, answer);
      });
  }

  private onHelloAnswer(socket: ClientSocket, answer: Parameters<Ack<Welcome>>[0]): void {
    if (this.closed || this.socket !== socket) return;
    if (!answer.ok) {
      this.options.logger.error({ ...answer.error }, 'the coordinator refused the hello');
      this.emit('fatal', answer.error);
      if (this.firstWelcome) {
        this.firstWelcome.reject(
          Object.assign(new Error(answer.error.message), { code: answer.error.code }),
        );
        this.firstWelcome = undefined;
      }
      this.close();
      return;
    }
    const raw = answer.value as unknown;
    if (raw !== null && typeof raw === 'object' && 'iceServers' in raw) {
      // handed to RTCPeerConnection: only well-formed STUN/TURN entries, else none (the rest
      // of the welcome still counts)
      const ice = iceServersSchema.safeParse(raw.iceServers);
      if (!ice.success) {
        this.options.logger.warn(
          { issue: ice.error.issues[0]?.message },
          'ignoring malformed ICE servers in the welcome',
        );
        delete raw.iceServers;
      }
    }
    const welcome = this.accept('welcome', welcomeSchema, raw);
    if (welcome === undefined) {
      // a coordinator speaking another protocol: nothing of it can be trusted
      const error: WireError = {
        code: 'invalid-message',
        message: 'the coordinator sent a malformed welcome',
        event: 'hello',
      };
      this.emit('fatal', error);
      this.firstWelcome?.reject(Object.assign(new Error(error.message), { code: error.code }));
      this.firstWelcome = undefined;
      this.close();
      return;
    }
    const reconnect = this.welcomeValue !== undefined;
    const newIdentity = reconnect && this.welcomeValue!.tabId !== welcome.tabId;
    this.welcomeValue = welcome;
    this.iterationKey =
      welcome.iterationKey === undefined
        ? undefined
        : importIterationKey(welcome.iterationKey).catch((error: unknown) => {
            this.options.logger.warn(
              { error: error instanceof Error ? error.message : String(error) },
              'iteration key refused: frames from peers will be ignored',
            );
            return undefined;
          });
    this.resumeToken = welcome.resumeToken;
    this.learningRateValue = welcome.learningRate;
    this.stalenessValue = undefined;
    this.phaseValue = welcome.phase;
    this.welcomed = true;
    this.emit('connection', true);
    this.options.logger.info(
      { tabId: welcome.tabId, iteration: welcome.iteration, reconnect, url: this.url },
      'welcomed by the coordinator',
    );
    if (this.baseValue === undefined || welcome.iteration !== this.iterationValue) {
      void this.resync();
    }
    this.emit('welcome', welcome, { reconnect, newIdentity });
    this.firstWelcome?.resolve(welcome);
    this.firstWelcome = undefined;
    const pending = this.beforeWelcome;
    this.beforeWelcome = [];
    for (const action of pending) action();
  }

  /** Iteration frames seen from peers that did not parse or verify (dropped). */
  get peerIterationsRefused(): number {
    return this.peerIterationsRejected;
  }

  /** Where this tab's iterations came from (see IterationFrameStats). */
  get iterationFrameStats(): Omit<IterationFrameStats, 'forwarded'> {
    return {
      fromCoordinator: this.appliedFrom.coordinator,
      fromPeers: this.appliedFrom.peer,
      refused: this.peerIterationsRejected,
      requests: this.iterationRequests,
    };
  }

  /** The largest iteration frame a peer may forward (for the mesh's reassembly bound). */
  static maxIterationFrameBytes(dimension: number): number {
    return maxIterationFrameBytes(maxUpdateFrameBytes(dimension));
  }

  /**
   * An iteration frame a peer forwarded: applied when it parses and the coordinator's signature
   * verifies, in order with the socket's frames; false when it cannot be judged now (no key, not
   * welcomed) or does not parse.
   */
  acceptPeerIteration(from: string, frame: Uint8Array): boolean {
    const welcome = this.welcomeValue;
    const key = this.iterationKey;
    if (!this.welcomed || welcome === undefined || key === undefined) return false;
    const parsed = parseIterationFrame(frame, {
      maxDeltaBytes: maxUpdateFrameBytes(welcome.dimension),
    });
    if (!parsed.ok) {
      this.peerIterationsRejected++;
      this.options.logger.debug(
        { peer: from, ...parsed.error },
        'iteration frame from a peer refused',
      );
      return false;
    }
    // one already applied: nothing to verify
    if (parsed.value.iteration <= this.iterationValue) return true;
    this.inOrder(async () => {
      const verified = await key.then((k) =>
        k === undefined ? false : verifyIterationFrame(parsed.value, k),
      );
      if (!verified) {
        this.peerIterationsRejected++;
        this.options.logger.warn(
          { peer: from, iteration: parsed.value.iteration },
          'iteration frame from a peer without a valid coordinator signature: dropped',
        );
        return;
      }
      if (this.welcomeValue === welcome) this.onIteration(parsed.value, 'peer');
    });
    return true;
  }

  /**
   * A peer's register is for iteration `iteration`: if this tab still has not seen it a moment
   * later (the relay's frame may be a few chunks behind the register), it asks the coordinator
   * instead of waiting for its stall timer.
   */
  expectIteration(iteration: number): void {
    if (iteration <= this.iterationValue || this.expectTimer !== undefined) return;
    this.expectTimer = this.options.clock.setTimeout(() => {
      this.expectTimer = undefined;
      if (iteration > this.iterationValue && !this.syncing) this.requestIterations();
    }, REQUEST_SPACING_MS);
  }

  private onIterationFrame(frame: Uint8Array): void {
    const welcome = this.welcomeValue!;
    const parsed = parseIterationFrame(frame, {
      maxDeltaBytes: maxUpdateFrameBytes(welcome.dimension),
    });
    if (!parsed.ok) {
      // the iteration it carried is lost: fetch the agreed parameters instead
      this.options.logger.warn({ ...parsed.error }, 'malformed iteration frame: refetching');
      void this.resync();
      return;
    }
    if (parsed.value.forward) this.emit('forward', frame);
    this.inOrder(() => this.onIteration(parsed.value, 'coordinator'));
  }

  /** Runs `step` after the frames before it (at once when none waits). */
  private inOrder(step: () => void | Promise<void>): void {
    if (this.framesInChain === 0) {
      const result = step();
      if (result !== undefined) this.chain(result);
      return;
    }
    this.chain(this.frameChain.then(step));
  }

  private chain(work: Promise<void>): void {
    this.framesInChain++;
    this.frameChain = work
      .catch((error: unknown) =>
        this.options.logger.error({ error: String(error) }, 'applying an iteration frame failed'),
      )
      .finally(() => this.framesInChain--);
  }

  private requestIterations(): void {
    const socket = this.socket;
    if (!socket || !this.welcomed || this.closed) return;
    const now = this.options.clock.now();
    const after = this.iterationValue;
    const last = this.lastRequest;
    if (last !== undefined && last.after === after && now - last.at < REQUEST_SPACING_MS) return;
    this.lastRequest = { after, at: now };
    this.iterationRequests++;
    this.paced(
      () => this.socket === socket && this.welcomed && !this.closed,
      () => socket.emit('iteration-request', { after }),
    );
  }

  /**
   * (Re)arms the wait for the next iteration: when it passes while training, the tab asks the
   * coordinator; the wait doubles until an iteration arrives.
   */
  private armStallTimer(grow = false): void {
    const clock = this.options.clock;
    if (this.stallTimer !== undefined) clock.clearTimeout(this.stallTimer);
    const sorted = [...this.intervals].sort((a, b) => a - b);
    const median = sorted.length === 0 ? 0 : sorted[sorted.length >> 1]!;
    const base = Math.max(this.options.minStallMs ?? MIN_STALL_MS, STALL_FACTOR * median);
    this.stallMs = grow ? Math.min(MAX_STALL_MS, Math.max(base, 2 * this.stallMs)) : base;
    this.stallTimer = clock.setTimeout(() => {
      this.stallTimer = undefined;
      if (this.closed) return;
      if (this.phaseValue === 'training' && !this.syncing) this.requestIterations();
      this.armStallTimer(true);
    }, this.stallMs);
  }

  private noteIteration(): void {
    const now = this.options.clock.now();
    if (this.lastIterationAt !== undefined) {
      this.intervals.push(now - this.lastIterationAt);
      if (this.intervals.length > 21) this.intervals.shift();
    }
    this.lastIterationAt = now;
    this.armStallTimer();
  }

  private onIteration(start: IterationStart, source: 'coordinator' | 'peer'): void {
    // a repeat (a relay's copy after the coordinator's, or a resend): nothing new in it, and
    // its phase and learning rate may be older than what this tab holds
    if (start.iteration <= this.iterationValue) return;
    this.appliedFrom[source]++;
    this.learningRateValue = start.learningRate;
    this.phaseValue = start.phase;
    if (start.staleness !== undefined) this.stalenessValue = start.staleness;
    if (this.syncing) {
      this.queued.push(start);
      return;
    }
    this.applyStart(start);
  }

  private applyStart(start: IterationStart): void {
    if (start.iteration <= this.iterationValue) return;
    const base = this.baseValue;
    const welcome = this.welcomeValue!;
    if (base !== undefined && start.delta && this.fillGap(start)) return;
    if (base === undefined || start.iteration !== this.iterationValue + 1 || !start.delta) {
      this.queued.push(start);
      void this.resync();
      return;
    }
    const frame = alignedBytes(start.delta);
    if (this.scratch?.length !== base.length) this.scratch = new Float32Array(base.length);
    const scratch = this.scratch;
    scratch.fill(0);
    const decoded =
      frame === undefined
        ? undefined
        : decodeFrameInto(frame, scratch, { dimension: base.length, jobId: welcome.jobId });
    if (!decoded?.ok) {
      this.options.logger.warn(
        { iteration: start.iteration, error: decoded?.ok === false ? decoded.error : 'no frame' },
        'undecodable delta: refetching the parameters',
      );
      this.queued.push(start);
      void this.resync();
      return;
    }
    for (let i = 0; i < base.length; i++) base[i]! += scratch[i]!;
    this.iterationValue = start.iteration;
    this.noteIteration();
    this.emit('base', {
      iteration: start.iteration,
      learningRate: start.learningRate,
      phase: start.phase,
      resynced: false,
    });
    this.applyAhead();
  }

  /**
   * `start` is ahead of the next iteration by a gap the coordinator still holds the frames of:
   * keep it, ask for the gap (the answer arrives in order on the socket) and give up on it for
   * a parameter download only if the gap is not filled within GAP_WAIT_MS. False: not a gap
   * this tab can fill (it applies or resyncs as before).
   */
  private fillGap(start: IterationStart): boolean {
    const gap = start.iteration - this.iterationValue - 1;
    if (gap < 1 || gap >= KEPT_ITERATION_FRAMES) return false;
    this.ahead.set(start.iteration, start);
    this.requestIterations();
    if (this.gapTimer === undefined) {
      this.gapTimer = this.options.clock.setTimeout(() => {
        this.gapTimer = undefined;
        if (this.ahead.size > 0 && !this.closed) void this.resync();
      }, GAP_WAIT_MS);
    }
    return true;
  }

  /** Applies the kept frames that follow the iteration just applied; a closed gap ends its wait. */
  private applyAhead(): void {
    if (this.ahead.size === 0) return;
    for (const iteration of [...this.ahead.keys()]) {
      if (iteration <= this.iterationValue) this.ahead.delete(iteration);
    }
    const next = this.ahead.get(this.iterationValue + 1);
    if (next !== undefined) {
      this.ahead.delete(next.iteration);
      this.applyStart(next);
    }
    if (this.ahead.size === 0 && this.gapTimer !== undefined) {
      this.options.clock.clearTimeout(this.gapTimer);
      this.gapTimer = undefined;
    }
  }

  /** Downloads the agreed parameters, then replays the queued deltas on top. */
  private async resync(): Promise<void> {
    if (this.syncing || this.closed) return;
    this.syncing = true;
    // frames kept ahead of a gap are replayed after the download like the others
    this.queued.push(...this.ahead.values());
    this.ahead.clear();
    if (this.gapTimer !== undefined) this.options.clock.clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    let delay = 250;
    for (;;) {
      const welcome = this.welcomeValue!;
      try {
        const response = await this.get(welcome.paramsUrl);
        const bytes = new Uint8Array(await response.arrayBuffer());
        const base = new Float32Array(welcome.dimension);
        const parsed = decodeFrameInto(bytes, base, {
          dimension: welcome.dimension,
          jobId: welcome.jobId,
        });
        if (!parsed.ok) throw new Error(`parameters: ${parsed.error.code} ${parsed.error.message}`);
        if (this.closed) return;
        this.baseValue = base;
        this.iterationValue = parsed.value.iteration;
        break;
      } catch (error) {
        if (this.closed) return;
        this.options.logger.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'fetching the parameters failed; retrying',
        );
        await sleep(this.options.clock, delay);
        delay = Math.min(5000, delay * 2);
      }
    }
    this.syncing = false;
    this.armStallTimer();
    this.options.logger.info({ iteration: this.iterationValue }, 'parameters downloaded');
    this.emit('base', {
      iteration: this.iterationValue,
      learningRate: this.learningRateValue,
      phase: this.phaseValue,
      resynced: true,
    });
    const queued = this.queued.sort((a, b) => a.iteration - b.iteration);
    this.queued = [];
    for (const start of queued) {
      if (this.syncing) this.queued.push(start);
      else this.applyStart(start);
    }
  }
}
