import { describe, expect, it } from 'vitest';
import {
  MAX_CHUNK_BYTES,
  allocateFrame,
  encodeIterationFrame,
  sealFrame,
} from '@swarmgrad/protocol';
import { Mesh, type LinkState } from '../src/mesh.ts';
import { silentLogger } from '../src/runtime.ts';
import { FakeClock } from '@swarmgrad/test-support/host';
import { FakeNetwork, type FakePeer } from './support/fake-peer.ts';

async function flush(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

function setup() {
  const clock = new FakeClock();
  const network = new FakeNetwork();
  const meshes = new Map<string, Mesh>();
  const frames = new Map<string, Uint8Array[]>();
  const states = new Map<string, LinkState[]>();
  for (const id of ['a', 'b']) {
    const mesh = new Mesh({
      selfId: id,
      PeerCtor: network.ctor(),
      sendSignal: (to, data) => queueMicrotask(() => meshes.get(to)?.handleSignal(id, data)),
      clock,
      logger: silentLogger,
    });
    frames.set(id, []);
    states.set(id, []);
    mesh.on('frame', (_from, frame) => frames.get(id)!.push(frame));
    mesh.on('link', (_peer, state) => states.get(id)!.push(state));
    meshes.set(id, mesh);
  }
  const a = meshes.get('a')!;
  const b = meshes.get('b')!;
  const livePeer = (initiator: boolean) =>
    network.created.filter((p) => p.initiator === initiator && !p.destroyed).at(-1) as FakePeer;
  return { clock, network, a, b, frames, states, livePeer };
}

function frameOf(bytes: number, seed: number): Uint8Array {
  const frame = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) frame[i] = (i * 31 + seed) & 0xff;
  return frame;
}

describe('mesh over simple-peer links', () => {
  it('the smaller id offers; frames go in ≤ 64 KiB chunks under bufferedAmount backpressure', async () => {
    const { clock, network, a, b, frames } = setup();
    network.autoDrain = false;
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    expect(a.linkInfo()[0]).toMatchObject({ tabId: 'b', initiator: true, state: 'connected' });
    expect(b.linkInfo()[0]).toMatchObject({ tabId: 'a', initiator: false, state: 'connected' });

    const big = frameOf(3 * 1024 * 1024 + 123, 7);
    a.send('b', big);
    await flush();
    const channel = network.created.find((p) => p.initiator)!._channel;
    // stops at the high-water mark (1 MiB) until the channel drains
    expect(channel.bufferedAmount).toBeGreaterThan(1024 * 1024 - MAX_CHUNK_BYTES);
    expect(channel.bufferedAmount).toBeLessThanOrEqual(1024 * 1024 + MAX_CHUNK_BYTES);
    expect(frames.get('b')).toHaveLength(0);
    for (let i = 0; i < 20 && frames.get('b')!.length === 0; i++) {
      network.drainAll();
      clock.advance(10);
      await flush();
    }
    expect(network.largestMessage).toBeLessThanOrEqual(MAX_CHUNK_BYTES);
    expect(frames.get('b')).toHaveLength(1);
    expect(Buffer.from(frames.get('b')![0]!).equals(Buffer.from(big))).toBe(true);
    // bytes counted include the 16-byte chunk headers
    const chunks = Math.ceil(big.byteLength / (MAX_CHUNK_BYTES - 16));
    expect(a.bytesSent).toBe(big.byteLength + 16 * chunks);
  });

  it('a broken link is re-established and the register sent again', async () => {
    const { clock, a, b, frames, states, livePeer } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    const register = frameOf(5000, 3);
    a.publish(register);
    await flush();
    expect(frames.get('b')).toHaveLength(1);

    livePeer(true).fail();
    await flush();
    expect(a.linkState('b')).toBe('reconnecting');
    expect(b.linkState('a')).toBe('reconnecting');
    clock.advance(1000); // backoff ≤ 625 ms after a good connection
    await flush();
    clock.advance(1000);
    await flush();
    expect(a.linkState('b')).toBe('connected');
    expect(b.linkState('a')).toBe('connected');
    expect(states.get('a')).toEqual(
      expect.arrayContaining(['connecting', 'connected', 'reconnecting']),
    );
    // the register reaches the peer again on the new connection
    expect(frames.get('b')!.length).toBeGreaterThanOrEqual(2);
    expect(Buffer.from(frames.get('b')!.at(-1)!).equals(Buffer.from(register))).toBe(true);

    // reset() takes the same path
    expect(a.reset('b')).toBe(true);
    await flush();
    clock.advance(2000);
    await flush();
    clock.advance(2000);
    await flush();
    expect(a.linkState('b')).toBe('connected');
  });

  it('a withdrawn register is not sent to a link that connects later', async () => {
    const { a, b, frames } = setup();
    a.publish(frameOf(100, 1));
    a.publish(undefined);
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    expect(a.linkState('b')).toBe('connected');
    expect(frames.get('b')).toHaveLength(0);
  });

  it('drops ICE candidates of an older session, passes the current ones', async () => {
    const { a, b, livePeer } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    const answerer = livePeer(false);
    const offerer = livePeer(true);
    const before = answerer.signalsIn.length;
    b.handleSignal('a', {
      type: 'candidate',
      candidate: { candidate: 'candidate:9 1 udp 1 192.0.2.2 9 typ host ufrag old-session' },
    });
    expect(answerer.signalsIn.length).toBe(before);
    b.handleSignal('a', {
      type: 'candidate',
      candidate: { candidate: `candidate:9 1 udp 1 192.0.2.2 9 typ host ufrag ${offerer.id}` },
    });
    expect(answerer.signalsIn.length).toBe(before + 1);
  });

  it('counts the fp32 size of registers and of the deltas it forwards as a relay', async () => {
    const { a, b } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    const update = (dimension: number) => {
      const { bytes } = allocateFrame(
        {
          codec: 'one-bit',
          jobId: 1,
          iteration: 3,
          round: 0,
          senderSlot: 0,
          dimension,
          blockSize: 32,
        },
        8,
      );
      return sealFrame(bytes);
    };
    a.publish(update(1000));
    await flush();
    expect(a.fp32Bytes).toBe(4000);
    // an iteration frame: its bytes 20–23 are the learning rate's, not a dimension
    const forwarded = encodeIterationFrame(
      { iteration: 4, learningRate: 0.05, phase: 'training' },
      update(2500),
    );
    a.send('b', forwarded);
    await flush();
    expect(a.fp32Bytes).toBe(4000 + 10_000);
    a.send('b', new Uint8Array([1, 2, 3]));
    await flush();
    expect(a.fp32Bytes).toBe(14_000);
  });

  it('closes links to tabs that left the cluster', async () => {
    const { a, b, states } = setup();
    a.setPeers(['b']);
    b.setPeers(['a']);
    await flush();
    a.setPeers([]);
    expect(a.linkInfo()).toEqual([]);
    expect(states.get('a')!.at(-1)).toBe('closed');
  });
});

describe('mesh ICE servers', () => {
  it('new connection attempts use the latest ICE servers (a welcome brings fresh TURN credentials)', async () => {
    const network = new FakeNetwork();
    const Base = network.ctor();
    const configs: unknown[][] = [];
    const Recording = class extends Base {
      constructor(options: ConstructorParameters<typeof Base>[0]) {
        configs.push(options.config.iceServers);
        super(options);
      }
    };
    const stun = { urls: ['stun:192.0.2.1:3478'] };
    const mesh = new Mesh({
      selfId: 'a',
      PeerCtor: Recording,
      iceServers: [stun],
      sendSignal: () => undefined,
      clock: new FakeClock(),
      logger: silentLogger,
    });
    mesh.setPeers(['b']);
    await flush();
    expect(configs).toEqual([[stun]]);
    const turn = { urls: 'turn:192.0.2.1:3478', username: '1700000000:a', credential: 'c2VjcmV0' };
    mesh.setIceServers([stun, turn]);
    // a new identity drops every link; the next attempt takes the new list
    mesh.setSelf('a2');
    mesh.setPeers(['b']);
    await flush();
    expect(configs.at(-1)).toEqual([stun, turn]);
    mesh.close();
  });
});
