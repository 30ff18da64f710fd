/**
 * The coordinator's relay of frames between tabs whose WebRTC link fails (issue 14, item 3),
 * over real socket.io: link reports and relay-frame requests are validated (schema, cluster,
 * relayed pair, size, frame header, job, rate) and refused with typed codes; a pair both ends
 * reported failed is told its relay list and its frames reach the other end untouched; at the
 * next iteration placement parts such a pair when the seats allow, and the relay ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RelayedFrame, RelayPeers } from '@swarmgrad/protocol';
import {
  allocateFrame,
  encodePeerMessage,
  limits,
  maxUpdateFrameBytes,
  sealFrame,
} from '@swarmgrad/protocol';
import type { Coordinator } from '../src/index.ts';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, status, waitFor } from '@swarmgrad/test-support/harness';

let coordinator: Coordinator | undefined;
const workers: FakeWorker[] = [];

afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  await coordinator?.close({ checkpoint: false });
  coordinator = undefined;
});

/** Three fake workers in clusters of two; they propose, so iterations close and c is seated. */
async function cluster() {
  coordinator = await startCoordinator(
    { cluster: { size: 2, redundancy: 0 } },
    { resumeGraceMs: 500 },
  );
  const url = coordinator.url;
  for (let i = 0; i < 3; i++) workers.push(await FakeWorker.connect({ url }));
  await waitFor(() => workers.every((w) => w.placement !== undefined), 'placements');
  // the relay is what is tested here: no iteration closes from now on, so placement (which would
  // part a and b, seating b beside c) does not run until a test resumes the proposals
  for (const w of workers) w.setAutoPropose(false);
  // a proposal sent before may still close the iteration: wait until one stays open
  for (let seen = -1; seen !== coordinator.iteration;) {
    seen = coordinator.iteration;
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
  const [a, b, c] = workers as [FakeWorker, FakeWorker, FakeWorker];
  // clusters of two: a and b together, c in another one
  expect(a.placement!.clusterId).toBe(b.placement!.clusterId);
  expect(c.placement!.clusterId).not.toBe(a.placement!.clusterId);
  const lists = new Map<FakeWorker, string[][]>();
  const received = new Map<FakeWorker, RelayedFrame[]>();
  for (const w of workers) {
    lists.set(w, []);
    received.set(w, []);
    w.socket.on('relay-peers', (info: RelayPeers) => lists.get(w)!.push(info.peers));
    w.socket.on('relayed-frame', (m: RelayedFrame) => received.get(w)!.push(m));
  }
  return { coordinator, a, b, c, lists, received };
}

describe('the relay of frames between tabs whose link fails', () => {
  it('relays a pair both ends reported failed, checks every frame, and counts them', async () => {
    const { coordinator: coord, a, b, c, lists, received } = await cluster();
    const frame = a.encode(new Float32Array(coord.dimension).fill(0.01));

    // not relayed yet
    a.socket.emit('relay-frame', { to: b.id }, frame);
    await waitFor(() => a.rejections.length >= 1, 'a refusal');
    expect(a.rejections[0]!.code).toBe('not-relayed');

    // malformed reports and reports about a tab of another cluster
    a.socket.emit('link', { peer: b.id, state: 'broken', attempts: 1 });
    a.socket.emit('link', { peer: c.id, state: 'failed', attempts: 1 });
    a.socket.emit('link', { peer: b.id, state: 'failed', attempts: -1 });
    await waitFor(() => a.rejections.length >= 4, 'report refusals');
    expect(a.rejections.slice(1).map((r) => r.code)).toEqual([
      'invalid-message',
      'not-in-cluster',
      'invalid-message',
    ]);

    // one end's report is not enough; the other's relays the pair and tells both ends
    a.socket.emit('link', { peer: b.id, state: 'failed', attempts: 1, reason: 'timeout' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(lists.get(a)).toEqual([]);
    b.socket.emit('link', { peer: a.id, state: 'failed', attempts: 1, reason: 'timeout' });
    await waitFor(() => lists.get(a)!.length === 1 && lists.get(b)!.length === 1, 'relay lists');
    expect(lists.get(a)).toEqual([[b.id]]);
    expect(lists.get(b)).toEqual([[a.id]]);
    expect(lists.get(c)).toEqual([]);
    expect(coord.events.filter((e) => e.kind === 'link-relayed')).toHaveLength(1);

    // a frame crosses untouched
    a.socket.emit('relay-frame', { to: b.id }, frame);
    await waitFor(() => received.get(b)!.length === 1, 'the relayed frame');
    expect(received.get(b)![0]!.from).toBe(a.id);
    expect(Buffer.from(received.get(b)![0]!.frame).equals(Buffer.from(frame))).toBe(true);
    // so does a peer message (a proposer's confirm request, a member's voucher)
    const vouch = encodePeerMessage({
      type: 'abstain',
      clusterId: a.placement!.clusterId,
      iteration: 0,
      proposer: b.id,
      reason: 'missing-register',
    });
    a.socket.emit('relay-frame', { to: b.id }, vouch);
    await waitFor(() => received.get(b)!.length === 2, 'the relayed peer message');
    expect(Buffer.from(received.get(b)![1]!.frame).equals(Buffer.from(vouch))).toBe(true);

    // refused: to a tab of another cluster, not binary, garbage, another job, too large, a peer
    // message that does not parse
    const before = a.rejections.length;
    a.socket.emit('relay-frame', { to: c.id }, frame);
    a.socket.emit('relay-frame', { to: b.id }, 'text');
    a.socket.emit('relay-frame', { to: b.id, extra: 1 }, frame);
    a.socket.emit('relay-frame', { to: b.id }, new Uint8Array(100).fill(7));
    const otherJob = allocateFrame(
      {
        codec: 'fp32',
        jobId: (a.welcome.jobId + 1) >>> 0,
        iteration: 0,
        round: 0,
        senderSlot: 0,
        dimension: 4,
        blockSize: 0,
      },
      16,
    );
    a.socket.emit('relay-frame', { to: b.id }, sealFrame(otherJob.bytes));
    a.socket.emit(
      'relay-frame',
      { to: b.id },
      new Uint8Array(maxUpdateFrameBytes(coord.dimension) + 1),
    );
    const badVouch = vouch.slice();
    badVouch[vouch.byteLength - 2] = 0x7b;
    a.socket.emit('relay-frame', { to: b.id }, badVouch);
    await waitFor(() => a.rejections.length >= before + 7, 'frame refusals');
    expect(a.rejections.slice(before).map((r) => r.code)).toEqual([
      'not-in-cluster',
      'invalid-message',
      'invalid-message',
      'bad-magic',
      'wrong-job',
      'payload-too-large',
      'invalid-message',
    ]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received.get(b)).toHaveLength(2);
    expect(received.get(c)).toEqual([]);

    const api = await status(coord.url);
    expect(api.relayedFrames).toBe(2);
    expect(api.relay).toEqual({ bytes: frame.byteLength + vouch.byteLength, pairs: 1 });
    expect(api.rejected['not-relayed']).toBe(1);
    const metrics = await (await fetch(`${coord.url}/metrics`)).text();
    expect(metrics).toMatch(/^swarmgrad_relayed_frames_total 2$/m);
    expect(metrics).toMatch(/^swarmgrad_relayed_pairs 1$/m);
    expect(metrics).toMatch(/^swarmgrad_wire_bytes_total\{path="relay"\} \d+/m);

    // the link came up: the relay ends, both ends are told, frames are refused again
    b.socket.emit('link', { peer: a.id, state: 'connected', attempts: 0 });
    await waitFor(() => lists.get(a)!.length === 2 && lists.get(b)!.length === 2, 'relay ended');
    expect(lists.get(a)![1]).toEqual([]);
    expect(lists.get(b)![1]).toEqual([]);
    const after = a.rejections.length;
    a.socket.emit('relay-frame', { to: b.id }, frame);
    await waitFor(() => a.rejections.length > after, 'refused again');
    expect(a.rejections.at(-1)!.code).toBe('not-relayed');
    expect((await status(coord.url)).relay.pairs).toBe(0);
  }, 30_000);

  it('bounds the relayed frames per tab, and drops a pair when a tab leaves for good', async () => {
    const { coordinator: coord, a, b, c, lists, received } = await cluster();
    a.socket.emit('link', { peer: b.id, state: 'failed', attempts: 1 });
    b.socket.emit('link', { peer: a.id, state: 'failed', attempts: 1 });
    await waitFor(() => lists.get(a)!.length === 1, 'relayed');
    const frame = a.encode(new Float32Array(coord.dimension).fill(0.02));
    const sent = limits.relayFrameBurst + 20;
    const started = Date.now();
    for (let i = 0; i < sent; i++) a.socket.emit('relay-frame', { to: b.id }, frame);
    await waitFor(
      () => received.get(b)!.length + a.rejections.length >= sent,
      'every frame relayed or refused',
    );
    const seconds = (Date.now() - started) / 1000;
    const relayed = received.get(b)!.length;
    // the burst, plus at most what the rate refilled while they were sent
    expect(relayed).toBeGreaterThanOrEqual(limits.relayFrameBurst);
    expect(relayed).toBeLessThanOrEqual(
      limits.relayFrameBurst + Math.ceil(limits.relayFramesPerSecond * seconds),
    );
    expect(relayed).toBeLessThan(sent);
    expect(new Set(a.rejections.map((r) => r.code))).toEqual(new Set(['rate-limited']));

    // link reports are bounded too
    const reports = limits.linkReportBurst + 10;
    const refusedBefore = b.rejections.length;
    for (let i = 0; i < reports; i++)
      b.socket.emit('link', { peer: a.id, state: 'failed', attempts: i });
    await waitFor(() => b.rejections.length - refusedBefore >= 9, 'report refusals');
    expect(b.rejections.slice(refusedBefore).every((r) => r.code === 'rate-limited')).toBe(true);

    // b leaves; once the registry forgets it (resume grace, then an iteration), a is told
    b.close();
    await new Promise((resolve) => setTimeout(resolve, 700));
    for (const w of [a, c]) w.setAutoPropose(true);
    await waitFor(() => lists.get(a)!.length === 2, 'a told', 20_000);
    expect(lists.get(a)![1]).toEqual([]);
    expect(coord.relays.relayedPairs).toBe(0);
  }, 40_000);

  it('parts the pair at the next iteration when the seats allow: the relay ends', async () => {
    const { coordinator: coord, a, b, c, lists } = await cluster();
    a.socket.emit('link', { peer: b.id, state: 'failed', attempts: 1 });
    b.socket.emit('link', { peer: a.id, state: 'failed', attempts: 1 });
    await waitFor(() => lists.get(a)!.length === 1, 'relayed');
    expect(coord.registry.isApart(a.id, b.id)).toBe(true);
    for (const w of [a, b, c]) w.setAutoPropose(true);
    // b, the later joiner, takes the vacancy beside c; a stays
    const aCluster = a.placement!.clusterId;
    await waitFor(() => b.placement?.clusterId === c.placement!.clusterId, 'b beside c');
    expect(a.placement!.clusterId).toBe(aCluster);
    expect(coord.events.filter((e) => e.kind === 'tabs-parted')).toHaveLength(1);
    await waitFor(() => lists.get(a)!.length === 2 && lists.get(b)!.length === 2, 'relay ended');
    expect(lists.get(a)![1]).toEqual([]);
    expect(coord.relays.relayedPairs).toBe(0);
    // still apart: a later placement does not seat them together again
    expect(coord.registry.isApart(a.id, b.id)).toBe(true);
    const start = coord.iteration;
    await waitFor(() => coord.iteration >= start + 5, 'five more iterations');
    expect(b.placement!.clusterId).not.toBe(a.placement!.clusterId);
  });
});
