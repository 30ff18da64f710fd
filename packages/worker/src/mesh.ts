/**
 * The cluster's WebRTC mesh: one simple-peer data channel to every peer of the cluster,
 * signaled through the coordinator (DESIGN.md step 1; data channels only, no media).
 *
 * Guarantees
 * - One link per peer; the lexicographically smaller tab id initiates, the other answers, so two
 *   tabs never both offer. `iceServers: []` by default (LAN / same host; pass STUN/TURN servers
 *   for the open internet). `wrtc` (Node WebRTC) and the Peer constructor are injected.
 * - Frames travel as chunks of at most 64 KiB (packages/protocol chunkFrame), each link with its
 *   own FrameReassembler on the receiving side; chunking errors are reported with their typed
 *   code and never corrupt a later frame. A link never queues more than `highWaterMark` bytes in
 *   its data channel: it waits for `bufferedamountlow` (threshold `lowWaterMark`, polled as a
 *   fallback for implementations that do not fire it) before sending the next chunk.
 * - The register: `publish(frame)` makes `frame` this tab's current register; it goes to every
 *   connected link, replaces a previous register not yet started on a link, and is sent to a
 *   link as soon as it (re)connects. `publish(undefined)` withdraws it (new iteration).
 * - A broken link (closed, failed, or not connected within `connectTimeoutMs`) is re-established
 *   while the peer is still in the cluster, with exponential backoff (0.5 s doubling to 10 s):
 *   the initiator makes a new offer; the answerer asks for one with a `restart` signal. ICE
 *   candidates of an older session (another ice-ufrag) are dropped, so they cannot break the new
 *   one. Bytes sent are counted per chunk as written to the channel, with the fp32 equivalent
 *   (4 bytes per parameter per frame) for comparison; peer messages (confirm requests and
 *   vouchers) are counted apart (`controlBytesSent`), so the bits per parameter are the updates'.
 * - A connection attempt that fails or times out before the link connects emits `failed` (the
 *   tab reports it to the coordinator). Peers the coordinator relays (`setRelayed`: their link
 *   does not connect) get this tab's register and `send` frames through `relaySend` while their
 *   link is down, once per frame; frames relayed from them enter through `receiveRelayed` and
 *   are emitted as `frame` like those of a link (the tab validates both alike). The link keeps
 *   trying: once it connects, frames go direct again.
 */
import {
  FRAME_HEADER_BYTES,
  FRAME_MAGIC,
  ITERATION_FRAME_MAGIC,
  ITERATION_HEADER_BYTES,
  FrameReassembler,
  MAX_CHUNK_BYTES,
  chunkFrame,
  hasPeerMessageMagic,
  type ProtocolError,
  type SignalMessage,
} from '@swarmgrad/protocol';
import { Emitter, type Clock, type Logger } from './runtime.ts';

/** The part of an RTCDataChannel the mesh reads. */
export interface DataChannelLike {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold?: number;
  addEventListener?(type: 'bufferedamountlow', listener: () => void): void;
  removeEventListener?(type: 'bufferedamountlow', listener: () => void): void;
}

/** The part of a simple-peer instance the mesh uses. */
export interface PeerLike {
  readonly connected: boolean;
  /** simple-peer's data channel (a private field, read for backpressure). */
  readonly _channel?: DataChannelLike | null;
  /** simple-peer's RTCPeerConnection (a private field, read only for `getStats` in tests). */
  readonly _pc?: unknown;
  on(event: 'signal', listener: (data: SignalMessage['data']) => void): unknown;
  on(event: 'connect' | 'close', listener: () => void): unknown;
  on(event: 'data', listener: (data: Uint8Array) => void): unknown;
  on(event: 'error', listener: (error: Error & { code?: string }) => void): unknown;
  signal(data: unknown): void;
  send(data: Uint8Array): void;
  destroy(error?: Error): void;
}

export interface PeerOptions {
  initiator: boolean;
  trickle: boolean;
  config: { iceServers: unknown[] };
  channelConfig: { ordered: boolean };
  wrtc?: unknown;
}

export type PeerConstructor = new (options: PeerOptions) => PeerLike;

export type LinkState = 'connecting' | 'connected' | 'reconnecting' | 'closed';

export interface LinkInfo {
  tabId: string;
  state: LinkState;
  initiator: boolean;
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  /** Of those sent: peer messages (confirm requests, vouchers), frames and bytes. */
  controlFramesSent: number;
  controlBytesSent: number;
  /** Connection attempts since the link was last connected. */
  attempts: number;
  /** Chunks or frames refused on this link. */
  errors: number;
  /** The coordinator relays this peer's frames (the link does not connect). */
  relayed: boolean;
  relayedSent: number;
  relayedReceived: number;
}

/** A link with its current RTCPeerConnection (tests read `getStats()` from it). */
export interface LinkConnection extends LinkInfo {
  /** simple-peer's `_pc` of the current attempt; undefined between attempts. */
  connection: unknown;
}

export interface MeshOptions {
  selfId: string;
  PeerCtor: PeerConstructor;
  wrtc?: unknown;
  iceServers?: unknown[];
  sendSignal: (to: string, data: SignalMessage['data']) => void;
  clock: Clock;
  logger: Logger;
  highWaterMark?: number;
  lowWaterMark?: number;
  connectTimeoutMs?: number;
  maxFrameBytes?: number;
  /** Sends a frame to a peer through the coordinator (for peers `setRelayed` names). */
  relaySend?: (to: string, frame: Uint8Array) => void;
}

export type MeshEvents = {
  frame: (from: string, frame: Uint8Array) => void;
  link: (tabId: string, state: LinkState) => void;
  /** A chunk or frame refused on a link (typed protocol code). */
  refused: (from: string, error: ProtocolError) => void;
  /** A connection attempt to this peer failed or timed out before the link connected. */
  failed: (tabId: string, info: { attempts: number; reason: string }) => void;
};

interface Outgoing {
  chunks: Uint8Array[];
  next: number;
  register: boolean;
  fp32Bytes: number;
  /** A peer message (peer-message.ts): counted apart from the updates. */
  control: boolean;
}

interface Link {
  id: string;
  initiator: boolean;
  peer: PeerLike | undefined;
  generation: number;
  state: LinkState;
  reassembler: FrameReassembler;
  queue: Outgoing[];
  pumping: boolean;
  attempts: number;
  retryTimer: unknown;
  connectTimer: unknown;
  attemptStartedAt: number;
  remoteUfrag: string | undefined;
  nextFrameId: number;
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  framesReceived: number;
  controlFramesSent: number;
  controlBytesSent: number;
  errors: number;
  relayedSent: number;
  relayedReceived: number;
}

const MAX_BACKOFF_MS = 10_000;

export class Mesh extends Emitter<MeshEvents> {
  private selfId: string;
  private readonly options: MeshOptions;
  private readonly links = new Map<string, Link>();
  private register: Uint8Array | undefined;
  private closed = false;
  private readonly highWaterMark: number;
  private readonly lowWaterMark: number;
  private iceServers: unknown[];
  /** Peers whose frames travel through the coordinator. */
  private readonly relayed = new Set<string>();
  /** Frames sent and received through the coordinator, ever. */
  relayedFramesSent = 0;
  relayedFramesReceived = 0;
  /** Totals over all links, ever (bytesSent and framesSent: update frames; control apart). */
  bytesSent = 0;
  controlBytesSent = 0;
  fp32Bytes = 0;
  framesSent = 0;
  framesReceived = 0;
  bytesReceived = 0;

  constructor(options: MeshOptions) {
    super();
    this.options = options;
    this.selfId = options.selfId;
    this.highWaterMark = options.highWaterMark ?? 1 << 20;
    this.lowWaterMark = options.lowWaterMark ?? 256 << 10;
    this.iceServers = options.iceServers ?? [];
  }

  /**
   * STUN/TURN servers for the connection attempts from now on (a welcome brings fresh TURN
   * credentials); links already up keep theirs.
   */
  setIceServers(servers: unknown[]): void {
    this.iceServers = servers;
  }

  /** A new identity (the coordinator forgot this tab): every link starts over. */
  setSelf(id: string): void {
    if (id === this.selfId) return;
    this.selfId = id;
    this.relayed.clear();
    for (const link of [...this.links.values()]) this.drop(link);
  }

  /**
   * The peers whose frames now travel through the coordinator (its whole list). A newly relayed
   * peer whose link is down gets this tab's current register at once.
   */
  setRelayed(ids: readonly string[]): void {
    const before = new Set(this.relayed);
    this.relayed.clear();
    for (const id of ids) if (id !== this.selfId) this.relayed.add(id);
    for (const id of this.relayed) {
      const link = this.links.get(id);
      if (!before.has(id) && link && this.register !== undefined) this.relay(link, this.register);
    }
  }

  isRelayed(tabId: string): boolean {
    return this.relayed.has(tabId);
  }

  /** A frame a peer sent through the coordinator: emitted as `frame` (validated by the tab). */
  receiveRelayed(from: string, frame: Uint8Array): void {
    if (this.closed) return;
    const link = this.links.get(from);
    if (!link) return;
    link.relayedReceived++;
    this.relayedFramesReceived++;
    this.emit('frame', link.id, frame);
  }

  /** The cluster's live peers now: links to new ones open, links to departed ones close. */
  setPeers(ids: readonly string[]): void {
    if (this.closed) return;
    const wanted = new Set(ids.filter((id) => id !== this.selfId));
    for (const link of [...this.links.values()]) if (!wanted.has(link.id)) this.drop(link);
    for (const id of wanted) if (!this.links.has(id)) this.open(id);
  }

  /** A signal relayed by the coordinator (it checked the sender is in this tab's cluster). */
  handleSignal(from: string, data: unknown): void {
    if (this.closed || from === this.selfId || typeof data !== 'object' || data === null) return;
    const signal = data as { type?: string; sdp?: string; restart?: boolean; candidate?: unknown };
    let link = this.links.get(from);
    if (signal.type === 'resend-register') {
      // the peer misses this tab's register (it dropped it while behind): send it once more
      if (link?.state === 'connected' && this.register !== undefined) {
        link.queue = link.queue.filter((item) => !item.register || item.next > 0);
        this.enqueue(link, this.register, true);
      } else if (link && this.register !== undefined) this.relay(link, this.register);
      return;
    }
    if (signal.type === 'renegotiate' && signal.restart === true) {
      // the answerer lost the link: offer again now if we are not connected either
      const age = link ? this.options.clock.now() - link.attemptStartedAt : 0;
      if (link?.initiator && link.state !== 'connected' && (!link.peer || age > 2000)) {
        this.restart(link, 0);
      }
      return;
    }
    if (signal.type === 'offer') {
      if (!link) link = this.open(from);
      if (link.initiator) return; // two offers cannot both be right: ours stands
      if (link.peer) this.discardPeer(link);
      this.createPeer(link);
    }
    if (!link?.peer) return;
    if (signal.type === 'offer' || signal.type === 'answer') {
      link.remoteUfrag = /a=ice-ufrag:(\S+)/.exec(signal.sdp ?? '')?.[1];
    } else if (signal.type === 'candidate') {
      const text = (signal.candidate as { candidate?: unknown } | undefined)?.candidate;
      const ufrag = typeof text === 'string' ? /\bufrag (\S+)/.exec(text)?.[1] : undefined;
      if (ufrag !== undefined && link.remoteUfrag !== undefined && ufrag !== link.remoteUfrag) {
        return; // a candidate of an older session
      }
    }
    try {
      link.peer.signal(data);
    } catch (error) {
      this.options.logger.debug({ peer: from, error: String(error) }, 'signal refused by peer');
    }
  }

  /** Makes `frame` this tab's register (see the file comment); undefined withdraws it. */
  publish(frame: Uint8Array | undefined): void {
    this.register = frame;
    for (const link of this.links.values()) {
      link.queue = link.queue.filter((item) => !item.register || item.next > 0);
      if (frame !== undefined && link.state === 'connected') {
        this.enqueue(link, frame, true);
      } else if (frame !== undefined) this.relay(link, frame);
    }
  }

  /** Sends one frame to one peer (queued until the link is connected). */
  send(to: string, frame: Uint8Array): boolean {
    const link = this.links.get(to);
    if (!link) return false;
    if (!this.relay(link, frame)) this.enqueue(link, frame, false);
    return true;
  }

  linkInfo(): LinkInfo[] {
    return [...this.links.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((link) => ({
        tabId: link.id,
        state: link.state,
        initiator: link.initiator,
        bytesSent: link.bytesSent,
        bytesReceived: link.bytesReceived,
        framesSent: link.framesSent,
        framesReceived: link.framesReceived,
        controlFramesSent: link.controlFramesSent,
        controlBytesSent: link.controlBytesSent,
        attempts: link.attempts,
        errors: link.errors,
        relayed: this.relayed.has(link.id),
        relayedSent: link.relayedSent,
        relayedReceived: link.relayedReceived,
      }));
  }

  /** `linkInfo()` plus each link's current RTCPeerConnection (debug and tests only). */
  connections(): LinkConnection[] {
    const infos = this.linkInfo();
    return infos.map((info) => ({ ...info, connection: this.links.get(info.tabId)?.peer?._pc }));
  }

  /**
   * Tears the link to `tabId` down and re-establishes it (the same path as a link that broke),
   * e.g. after its frames kept failing. False when there is no such link.
   */
  reset(tabId: string): boolean {
    const link = this.links.get(tabId);
    if (!link) return false;
    this.broken(link, 'reset');
    return true;
  }

  linkState(tabId: string): LinkState | undefined {
    return this.links.get(tabId)?.state;
  }

  close(): void {
    this.closed = true;
    for (const link of [...this.links.values()]) this.drop(link);
    this.removeAllListeners();
  }

  // ---------------------------------------------------------------------------------------

  private open(id: string): Link {
    const link: Link = {
      id,
      initiator: this.selfId < id,
      peer: undefined,
      generation: 0,
      state: 'connecting',
      reassembler: this.newReassembler(),
      queue: [],
      pumping: false,
      attempts: 0,
      retryTimer: undefined,
      connectTimer: undefined,
      attemptStartedAt: this.options.clock.now(),
      remoteUfrag: undefined,
      nextFrameId: 1,
      bytesSent: 0,
      bytesReceived: 0,
      framesSent: 0,
      controlFramesSent: 0,
      controlBytesSent: 0,
      framesReceived: 0,
      errors: 0,
      relayedSent: 0,
      relayedReceived: 0,
    };
    this.links.set(id, link);
    this.setState(link, 'connecting');
    if (link.initiator) this.createPeer(link);
    else this.armConnectTimer(link);
    return link;
  }

  private newReassembler(): FrameReassembler {
    return new FrameReassembler(
      this.options.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.options.maxFrameBytes },
    );
  }

  private createPeer(link: Link): void {
    this.clearTimers(link);
    link.attemptStartedAt = this.options.clock.now();
    const generation = ++link.generation;
    link.reassembler = this.newReassembler();
    link.remoteUfrag = undefined;
    link.attempts++;
    const peer = new this.options.PeerCtor({
      initiator: link.initiator,
      trickle: true,
      config: { iceServers: this.iceServers },
      channelConfig: { ordered: true },
      ...(this.options.wrtc === undefined ? {} : { wrtc: this.options.wrtc }),
    });
    link.peer = peer;
    const current = () => !this.closed && link.generation === generation && link.peer === peer;
    peer.on('signal', (data) => {
      if (current()) this.options.sendSignal(link.id, data);
    });
    peer.on('connect', () => {
      if (!current()) return;
      this.clearTimers(link);
      link.attempts = 0;
      const channel = peer._channel;
      if (channel) channel.bufferedAmountLowThreshold = this.lowWaterMark;
      this.setState(link, 'connected');
      this.options.logger.debug({ peer: link.id }, 'data channel open');
      link.queue = link.queue.filter((item) => !item.register);
      if (this.register !== undefined) this.enqueue(link, this.register, true);
      else void this.pump(link);
    });
    peer.on('data', (data) => {
      if (current()) this.receive(link, data);
    });
    peer.on('close', () => {
      if (current()) this.broken(link, 'closed');
    });
    peer.on('error', (error) => {
      if (current()) this.broken(link, error.code ?? error.message);
    });
    this.armConnectTimer(link);
  }

  private armConnectTimer(link: Link): void {
    const { clock } = this.options;
    if (link.connectTimer !== undefined) clock.clearTimeout(link.connectTimer);
    const generation = link.generation;
    link.connectTimer = clock.setTimeout(() => {
      link.connectTimer = undefined;
      if (this.closed || link.state === 'connected' || this.links.get(link.id) !== link) return;
      if (link.generation !== generation && link.initiator) return;
      this.broken(link, 'timeout');
    }, this.options.connectTimeoutMs ?? 10_000);
  }

  private receive(link: Link, data: Uint8Array): void {
    const chunk = data instanceof Uint8Array ? data : new Uint8Array(data as ArrayBuffer);
    link.bytesReceived += chunk.byteLength;
    this.bytesReceived += chunk.byteLength;
    const result = link.reassembler.push(chunk);
    for (const error of result.errors) {
      link.errors++;
      this.emit('refused', link.id, error);
    }
    if (result.frame) {
      link.framesReceived++;
      this.framesReceived++;
      this.emit('frame', link.id, result.frame);
    }
  }

  private broken(link: Link, reason: string): void {
    if (this.closed || this.links.get(link.id) !== link) return;
    this.options.logger.debug({ peer: link.id, reason }, 'link broken');
    const wasConnected = link.state === 'connected';
    this.discardPeer(link);
    // a half-sent frame cannot be finished on a new connection
    link.queue = link.queue.filter((item) => item.next === 0 && !item.register);
    this.setState(link, 'reconnecting');
    if (!wasConnected && reason !== 'reset')
      this.emit('failed', link.id, { attempts: link.attempts, reason });
    const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.max(0, link.attempts - 1));
    this.restart(link, backoff * (0.75 + 0.5 * Math.random()));
  }

  private restart(link: Link, delayMs: number): void {
    const { clock } = this.options;
    if (link.retryTimer !== undefined) clock.clearTimeout(link.retryTimer);
    link.retryTimer = clock.setTimeout(() => {
      link.retryTimer = undefined;
      if (this.closed || this.links.get(link.id) !== link || link.state === 'connected') return;
      this.setState(link, 'connecting');
      if (link.initiator) {
        this.discardPeer(link);
        this.createPeer(link);
      } else {
        // ask the initiator for a new offer, and keep asking until one comes
        link.attempts++;
        this.options.sendSignal(link.id, { type: 'renegotiate', restart: true });
        this.armConnectTimer(link);
      }
    }, delayMs);
  }

  private discardPeer(link: Link): void {
    const peer = link.peer;
    link.peer = undefined;
    link.generation++;
    const abandoned = link.reassembler.abandon();
    if (abandoned) link.errors++;
    if (peer) {
      try {
        peer.destroy();
      } catch {
        // already gone
      }
    }
  }

  private drop(link: Link): void {
    this.clearTimers(link);
    this.discardPeer(link);
    this.links.delete(link.id);
    this.setState(link, 'closed');
  }

  private clearTimers(link: Link): void {
    const { clock } = this.options;
    if (link.retryTimer !== undefined) clock.clearTimeout(link.retryTimer);
    if (link.connectTimer !== undefined) clock.clearTimeout(link.connectTimer);
    link.retryTimer = undefined;
    link.connectTimer = undefined;
  }

  private setState(link: Link, state: LinkState): void {
    if (link.state === state && state !== 'connecting') return;
    link.state = state;
    this.emit('link', link.id, state);
  }

  /** Through the coordinator, when the peer is relayed and its link is down; false otherwise. */
  private relay(link: Link, frame: Uint8Array): boolean {
    const send = this.options.relaySend;
    if (!send || link.state === 'connected' || !this.relayed.has(link.id)) return false;
    send(link.id, frame);
    link.relayedSent++;
    this.relayedFramesSent++;
    return true;
  }

  private enqueue(link: Link, frame: Uint8Array, register: boolean): void {
    link.queue.push({
      chunks: chunkFrame(frame, link.nextFrameId++, MAX_CHUNK_BYTES),
      next: 0,
      register,
      fp32Bytes: fp32Equivalent(frame),
      control: hasPeerMessageMagic(frame),
    });
    void this.pump(link);
  }

  private async pump(link: Link): Promise<void> {
    if (link.pumping) return;
    link.pumping = true;
    try {
      while (link.queue.length > 0 && link.state === 'connected' && link.peer) {
        const item = link.queue[0]!;
        while (item.next < item.chunks.length) {
          const peer = link.peer;
          if (!peer || link.state !== 'connected') return;
          if (!(await this.writable(link, peer))) return;
          const chunk = item.chunks[item.next]!;
          peer.send(chunk);
          item.next++;
          link.bytesSent += chunk.byteLength;
          if (!item.control) this.bytesSent += chunk.byteLength;
          else {
            link.controlBytesSent += chunk.byteLength;
            this.controlBytesSent += chunk.byteLength;
          }
        }
        if (link.queue[0] === item) link.queue.shift();
        link.framesSent++;
        if (!item.control) this.framesSent++;
        else link.controlFramesSent++;
        this.fp32Bytes += item.fp32Bytes;
      }
    } catch (error) {
      this.broken(link, error instanceof Error ? error.message : String(error));
    } finally {
      link.pumping = false;
    }
  }

  /** Resolves true once the channel holds ≤ highWaterMark bytes; false if the link went away. */
  private async writable(link: Link, peer: PeerLike): Promise<boolean> {
    const channel = peer._channel;
    if (!channel || channel.bufferedAmount <= this.highWaterMark) return true;
    const { clock } = this.options;
    return new Promise<boolean>((resolve) => {
      let poll: unknown;
      const done = (value: boolean) => {
        channel.removeEventListener?.('bufferedamountlow', onLow);
        if (poll !== undefined) clock.clearTimeout(poll);
        resolve(value);
      };
      const check = () => {
        if (poll !== undefined) clock.clearTimeout(poll);
        poll = undefined;
        if (link.peer !== peer || link.state !== 'connected' || this.closed) return done(false);
        if (channel.bufferedAmount <= this.lowWaterMark) return done(true);
        poll = clock.setTimeout(check, 10);
      };
      const onLow = () => check();
      channel.addEventListener?.('bufferedamountlow', onLow);
      poll = clock.setTimeout(check, 10);
    });
  }
}

/**
 * What the update a frame carries would take in fp32: 4 bytes per parameter of an update frame
 * (a register), or of the delta inside an iteration frame this tab forwards as a relay (whose
 * header is not an update frame's: its bytes 20–23 are no dimension); 0 for anything else.
 */
function fp32Equivalent(frame: Uint8Array): number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const dimensionAt = (offset: number) =>
    frame.byteLength >= offset + FRAME_HEADER_BYTES && view.getUint32(offset, true) === FRAME_MAGIC
      ? view.getUint32(offset + 20, true)
      : 0;
  if (frame.byteLength >= 4 && view.getUint32(0, true) === ITERATION_FRAME_MAGIC)
    return 4 * dimensionAt(ITERATION_HEADER_BYTES);
  return 4 * dimensionAt(0);
}
