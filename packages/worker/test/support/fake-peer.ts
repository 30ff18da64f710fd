/**
 * An in-memory stand-in for simple-peer: offers and answers carry an `a=ice-ufrag:` line naming
 * the peer, the answer pairs the two, `send` moves bytes into the other side's `data` listeners
 * and into a bufferedAmount the test drains by hand (to exercise backpressure).
 */
import type { DataChannelLike, PeerLike, PeerOptions } from '../../src/mesh.ts';

type Listener = (...args: never[]) => void;

class FakeChannel implements DataChannelLike {
  bufferedAmount = 0;
  bufferedAmountLowThreshold = 0;
  private readonly listeners = new Set<() => void>();
  addEventListener(_type: 'bufferedamountlow', listener: () => void): void {
    this.listeners.add(listener);
  }
  removeEventListener(_type: 'bufferedamountlow', listener: () => void): void {
    this.listeners.delete(listener);
  }
  drain(): void {
    const before = this.bufferedAmount;
    this.bufferedAmount = 0;
    if (before > this.bufferedAmountLowThreshold) for (const l of [...this.listeners]) l();
  }
}

export class FakeNetwork {
  readonly peers = new Map<string, FakePeer>();
  readonly created: FakePeer[] = [];
  /** Largest message ever sent. */
  largestMessage = 0;
  /** When false, sent bytes stay in bufferedAmount until drainAll(). */
  autoDrain = true;
  private nextId = 1;

  newId(): string {
    return `p${this.nextId++}`;
  }

  drainAll(): void {
    for (const peer of this.created) peer._channel.drain();
  }

  /** A constructor bound to this network (what the mesh's PeerCtor option takes). */
  ctor(): new (options: PeerOptions) => PeerLike {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const network = this;
    return class extends FakePeer {
      constructor(options: PeerOptions) {
        super(network, options);
      }
    };
  }
}

export class FakePeer implements PeerLike {
  readonly id: string;
  readonly initiator: boolean;
  connected = false;
  destroyed = false;
  readonly _channel = new FakeChannel();
  readonly signalsIn: unknown[] = [];
  private remote: FakePeer | undefined;
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(
    private readonly network: FakeNetwork,
    options: PeerOptions,
  ) {
    this.id = network.newId();
    this.initiator = options.initiator;
    network.peers.set(this.id, this);
    network.created.push(this);
    if (this.initiator) {
      queueMicrotask(() => {
        if (this.destroyed) return;
        this.fire('signal', { type: 'offer', sdp: `v=0\r\na=ice-ufrag:${this.id}\r\n` });
        this.fire('signal', {
          type: 'candidate',
          candidate: { candidate: `candidate:1 1 udp 1 192.0.2.2 1 typ host ufrag ${this.id}` },
        });
      });
    }
  }

  on(event: string, listener: Listener): this {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return this;
  }

  private fire(event: string, ...args: unknown[]): void {
    for (const l of [...(this.listeners.get(event) ?? [])])
      (l as (...a: unknown[]) => void)(...args);
  }

  signal(data: unknown): void {
    if (this.destroyed) throw new Error('destroyed');
    this.signalsIn.push(data);
    const d = data as { type?: string; sdp?: string };
    const remoteId = /a=ice-ufrag:(\S+)/.exec(d.sdp ?? '')?.[1];
    if (d.type === 'offer' && remoteId) {
      this.remote = this.network.peers.get(remoteId);
      queueMicrotask(() => {
        if (this.destroyed) return;
        this.fire('signal', { type: 'answer', sdp: `v=0\r\na=ice-ufrag:${this.id}\r\n` });
      });
    } else if (d.type === 'answer' && remoteId) {
      const remote = this.network.peers.get(remoteId);
      if (!remote || remote.remote !== this) return;
      this.remote = remote;
      queueMicrotask(() => {
        if (this.destroyed || remote.destroyed) return;
        this.connected = remote.connected = true;
        this.fire('connect');
        remote.fire('connect');
      });
    }
  }

  send(data: Uint8Array): void {
    if (!this.connected || !this.remote) throw new Error('not connected');
    this.network.largestMessage = Math.max(this.network.largestMessage, data.byteLength);
    this._channel.bufferedAmount += data.byteLength;
    const remote = this.remote;
    const copy = Uint8Array.from(data);
    queueMicrotask(() => {
      if (!remote.destroyed) remote.fire('data', copy);
    });
    if (this.network.autoDrain) queueMicrotask(() => this._channel.drain());
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const wasConnected = this.connected;
    this.connected = false;
    const remote = this.remote;
    if (wasConnected && remote && !remote.destroyed) {
      remote.connected = false;
      queueMicrotask(() => remote.fire('close'));
    }
  }

  /** The connection fails under this peer (as an ICE failure would). */
  fail(): void {
    const remote = this.remote;
    this.connected = false;
    this.fire('close');
    if (remote && !remote.destroyed) {
      remote.connected = false;
      remote.fire('close');
    }
  }
}
