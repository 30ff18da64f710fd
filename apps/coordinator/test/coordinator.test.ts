/**
 * Integration tests against the real coordinator: a real socket.io server on a port, real
 * socket.io clients acting as workers, real HTTP, real files for checkpoints.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { io } from 'socket.io-client';
import {
  allocateFrame,
  AUTO_MAX_STALENESS,
  FRAME_HEADER_BYTES,
  jobIdOf,
  PROTOCOL_VERSION,
  sealFrame,
  type DashboardStatus,
} from '@swarmgrad/protocol';
import { encodeToFrame, getCodec, stalenessStepScale } from '@swarmgrad/core';
import { tabParser } from '@swarmgrad/protocol/socket-parser';
import type { Coordinator } from '../src/index.ts';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, status, waitFor } from '@swarmgrad/test-support/harness';

const running: Coordinator[] = [];
const workers: FakeWorker[] = [];

async function coordinatorWith(...args: Parameters<typeof startCoordinator>): Promise<Coordinator> {
  const coordinator = await startCoordinator(...args);
  running.push(coordinator);
  return coordinator;
}

async function worker(
  url: string,
  options: Partial<Parameters<typeof FakeWorker.connect>[0]> = {},
): Promise<FakeWorker> {
  const w = await FakeWorker.connect({ url, ...options });
  workers.push(w);
  return w;
}

afterEach(async () => {
  for (const w of workers.splice(0)) w.close();
  for (const c of running.splice(0)) await c.close({ checkpoint: false });
});

describe('coordinator', () => {
  it('trains the job: held-out accuracy rises from chance to > 75% with 1-bit proposals', async () => {
    const coordinator = await coordinatorWith({}, { evaluate: true });
    const before = await coordinator.evaluateNow();
    expect(before!.accuracy).toBeLessThan(0.3);
    for (let i = 0; i < 4; i++) await worker(coordinator.url);
    await waitFor(() => coordinator.iteration >= 40, 'iteration 40', 60_000);
    const after = await coordinator.evaluateNow();
    expect(after!.accuracy).toBeGreaterThan(0.75);
    const s = await status(coordinator.url);
    expect(s.clusters.length).toBe(2);
    // 1-bit frames: the wire carries far less than fp32 would
    expect(s.wire.bytesSent).toBeGreaterThan(0);
    expect(s.wire.fp32EquivalentBytes / s.wire.bytesSent).toBeGreaterThan(20);
    // the breakdown by path adds up to the total, and this swarm proposed and broadcast
    const { byPath } = s.wire;
    expect(byPath.peer + byPath.proposal + byPath.broadcast + byPath.relay).toBe(s.wire.bytesSent);
    expect(byPath.proposal).toBeGreaterThan(0);
    expect(byPath.broadcast).toBeGreaterThan(0);
  });

  it('places tabs in clusters by join order and rebalances when tabs leave', async () => {
    const coordinator = await coordinatorWith({}, { minTabs: 5 });
    const ws: FakeWorker[] = [];
    for (let i = 0; i < 5; i++) ws.push(await worker(coordinator.url));
    await waitFor(() => ws.every((w) => w.placement !== undefined), 'placements');
    const s = await status(coordinator.url);
    expect(s.clusters.map((c) => c.members.length)).toEqual([2, 2, 1]);
    // the coordinator measured every tab's round-trip time (the rtt placement strategy uses it)
    for (const m of s.clusters.flatMap((c) => c.members)) expect(m.rttMs).toBeGreaterThan(0);
    // each cluster: the members see each other as peers, exactly one proposer
    for (const cluster of s.clusters) {
      const members = ws.filter((w) => w.placement!.clusterId === cluster.id);
      expect(members.filter((w) => w.placement!.proposer)).toHaveLength(1);
      for (const m of members) {
        expect(m.placement!.peers.map((p) => p.tabId).sort()).toEqual(
          members
            .filter((o) => o !== m)
            .map((o) => o.id)
            .sort(),
        );
      }
    }
    // data: clusters train on disjoint global partitions
    const byCluster = new Map<number, Set<number>>();
    for (const w of ws) {
      const set = byCluster.get(w.placement!.clusterId) ?? new Set();
      for (const p of w.placement!.partitions) for (const g of p.global) set.add(g);
      byCluster.set(w.placement!.clusterId, set);
    }
    const all = [...byCluster.values()].flatMap((s) => [...s]);
    expect(new Set(all).size).toBe(all.length);

    // two tabs of different full clusters leave; after the next iteration the three left are
    // compacted into two clusters
    const leaving = [ws[0]!, ws[2]!];
    for (const w of leaving) w.close();
    const stay = ws.filter((w) => !leaving.includes(w));
    await waitFor(async () => (await status(coordinator.url)).tabs === 3, 'tabs to leave');
    // a leaver keeps its seat for its resume grace (1 s here): a compaction at an iteration
    // inside one leaver's grace seats it too, and the next one after its grace drops it
    const seated = (s: Awaited<ReturnType<typeof status>>) =>
      s.clusters.flatMap((c) => c.members.map((m) => m.tabId)).sort();
    const stayIds = stay.map((w) => w.id).sort();
    // (waitFor fails the test when they never are)
    const after = await waitFor(async () => {
      const s = await status(coordinator.url);
      return s.clusters.length === 2 && seated(s).join() === stayIds.join() ? s : undefined;
    }, 'the three tabs left compacted into two clusters');
    expect(after.clusters.map((c) => c.members.length).sort()).toEqual([1, 2]);
  });

  it('closes a round when a whole cluster disconnects mid-round, without waiting for it', async () => {
    // a long grace: the round can only close early because the missing cluster is gone
    const coordinator = await coordinatorWith(
      { cluster: { size: 1, redundancy: 0 }, agreement: { graceMs: 60_000 } },
      { minTabs: 3 },
    );
    const ws: FakeWorker[] = [];
    for (let i = 0; i < 3; i++) ws.push(await worker(coordinator.url, { autoPropose: false }));
    await waitFor(() => ws.every((w) => w.placement !== undefined), 'placements');
    expect((await status(coordinator.url)).clusters).toHaveLength(3);
    const start = coordinator.iteration;
    await ws[0]!.propose();
    await ws[1]!.propose();
    await new Promise((r) => setTimeout(r, 300));
    expect(coordinator.iteration).toBe(start); // majority held, but a live cluster is still computing
    ws[2]!.close(); // it leaves mid-round
    await waitFor(() => coordinator.iteration === start + 1, 'round to close', 5_000);
    expect(coordinator.events.some((e) => e.kind === 'tab-left-mid-round')).toBe(true);
  });

  it('hands the proposer role to the next live tab when the proposer leaves mid-round', async () => {
    const coordinator = await coordinatorWith({ agreement: { graceMs: 60_000 } }, { minTabs: 4 });
    const ws: FakeWorker[] = [];
    for (let i = 0; i < 4; i++) ws.push(await worker(coordinator.url, { autoPropose: false }));
    await waitFor(() => ws.every((w) => w.placement !== undefined), 'placements');
    const proposers = ws.filter((w) => w.placement!.proposer);
    expect(proposers).toHaveLength(2);
    const start = coordinator.iteration;
    await proposers[0]!.propose();
    const leaving = proposers[1]!;
    const heir = ws.find(
      (w) => w !== leaving && w.placement!.clusterId === leaving.placement!.clusterId,
    )!;
    expect(heir.placement!.proposer).toBe(false);
    leaving.close();
    await waitFor(() => heir.placement!.proposer, 'the heir to become proposer');
    expect(coordinator.iteration).toBe(start); // its cluster is still live: the round waits for it
    await heir.propose();
    await waitFor(() => coordinator.iteration === start + 1, 'round to close', 5_000);
  });

  it('gives a tab that reconnects with its resume token its identity and seat back', async () => {
    const coordinator = await coordinatorWith({}, { minTabs: 4, resumeGraceMs: 20_000 });
    const ws: FakeWorker[] = [];
    for (let i = 0; i < 4; i++) ws.push(await worker(coordinator.url));
    await waitFor(() => ws.every((w) => w.placement !== undefined), 'placements');
    const dropped = ws[3]!;
    const seat = { clusterId: dropped.placement!.clusterId, slot: dropped.placement!.slot };
    dropped.close();
    const at = coordinator.iteration;
    await waitFor(() => coordinator.iteration >= at + 2, 'iterations while it is away');
    const back = await worker(coordinator.url, {
      hello: { resumeToken: dropped.welcome.resumeToken },
    });
    expect(back.id).toBe(dropped.id);
    await waitFor(() => back.placement !== undefined, 'placement');
    expect({ clusterId: back.placement!.clusterId, slot: back.placement!.slot }).toEqual(seat);
  });

  it('enters quorum-lost when a majority of clusters has no live tab, and resumes when tabs return', async () => {
    const coordinator = await coordinatorWith({ cluster: { size: 1, redundancy: 0 } }, {});
    const ws: FakeWorker[] = [];
    for (let i = 0; i < 3; i++) ws.push(await worker(coordinator.url));
    await waitFor(() => coordinator.iteration >= 3, 'training');
    ws[1]!.close();
    ws[2]!.close();
    await waitFor(
      async () => (await status(coordinator.url)).phase === 'quorum-lost',
      'quorum-lost',
      10_000,
    );
    const stalled = coordinator.iteration;
    await new Promise((r) => setTimeout(r, 400));
    expect(coordinator.iteration).toBe(stalled); // no silent progress on a minority
    expect(coordinator.events.some((e) => e.kind === 'quorum-lost')).toBe(true);
    // two tabs come back: they take the dead clusters' seats and training resumes
    await worker(coordinator.url);
    await worker(coordinator.url);
    await waitFor(() => coordinator.iteration >= stalled + 3, 'training to resume', 15_000);
    expect((await status(coordinator.url)).phase).toBe('training');
    expect(coordinator.events.some((e) => e.kind === 'quorum-restored')).toBe(true);
  });

  it('sends iteration frames to the tabs it welcomed, not to a socket that has not said hello', async () => {
    const coordinator = await coordinatorWith({});
    // connected to the tabs' namespace, speaking the tabs' framing, never saying hello (its
    // hello timeout is 10 s: far more than the iterations below take)
    const silent = io(`${coordinator.url}/worker`, {
      transports: ['websocket'],
      parser: tabParser,
      forceNew: true,
      reconnection: false,
    });
    let frames = 0;
    silent.on('iteration', () => frames++);
    await new Promise<void>((resolve) => silent.once('connect', () => resolve()));
    const w = await worker(coordinator.url);
    const from = coordinator.iteration;
    await waitFor(
      () => coordinator.iteration >= from + 5 && w.iteration >= from + 5,
      '5 iterations',
    );
    expect(silent.connected).toBe(true);
    expect(frames).toBe(0);
    silent.disconnect();
  });

  it('drops proposals older than the staleness threshold and counts them', async () => {
    const coordinator = await coordinatorWith(
      { staleness: 1, cluster: { size: 1, redundancy: 0 } },
      {},
    );
    const a = await worker(coordinator.url);
    await waitFor(() => coordinator.iteration >= 5, 'iterations');
    const b = await worker(coordinator.url, { autoPropose: false });
    await waitFor(() => b.placement !== undefined, 'placement');
    const now = b.iteration;
    const stale = await b.propose(undefined, now - 2);
    expect(now).toBeGreaterThanOrEqual(2);
    expect(stale).toEqual({ ok: false, code: 'stale' });
    const future = await b.propose(undefined, coordinator.iteration + 5);
    expect(future).toEqual({ ok: false, code: 'wrong-iteration' });
    const s = await status(coordinator.url);
    expect(s.staleDropped).toBeGreaterThanOrEqual(1);
    const metrics = await (await fetch(`${coordinator.url}/metrics`)).text();
    expect(metrics).toMatch(/swarmgrad_stale_proposals_total [1-9]/);
    expect(a.rejections).toEqual([]);
  });

  it('staleness "auto" raises S to the delays it measures, then counts stale proposals with a shrunk step (seed 001)', async () => {
    const coordinator = await coordinatorWith(
      {
        staleness: 'auto',
        cluster: { size: 1, redundancy: 0 },
        // η·h·3 ≈ 0.6: a 3-iteration delay is stable, its step shrunk (past 1/e), and taking
        // the stale 40 % converges faster than dropping them (the SDDE rate, any E[T])
        optimizer: { kind: 'sgd', learningRate: 0.05, momentum: 0.9 },
      },
      { minTabs: 5 },
    );
    // three fresh tabs close iterations; two declare registers 3 iterations stale, more than
    // the starting S = 2 accepts
    for (let i = 0; i < 3; i++) await worker(coordinator.url);
    const stale = [
      await worker(coordinator.url, { staleness: 3 }),
      await worker(coordinator.url, { staleness: 3 }),
    ];
    const fullStatus = async (): Promise<DashboardStatus> =>
      (await (await fetch(`${coordinator.url}/api/status`)).json()) as DashboardStatus;
    const first = await fullStatus();
    expect(first.job.staleness).toBe('auto');
    expect(first.stalenessThreshold).toBe(2);
    await waitFor(() => coordinator.iteration >= 3, 'iterations', 30_000);
    expect((await status(coordinator.url)).staleDropped).toBeGreaterThan(0);
    let s = await fullStatus();
    await waitFor(
      async () => {
        s = await fullStatus();
        return s.stalenessAuto !== null && s.stalenessThreshold >= 3;
      },
      'auto S ≥ 3',
      40_000,
    );
    expect(s.stalenessAuto!.threshold).toBe(s.stalenessThreshold);
    expect(s.stalenessThreshold).toBeLessThanOrEqual(AUTO_MAX_STALENESS);
    expect(s.stalenessAuto!.reason).toMatch(/^S 2 → \d+: the fastest stable threshold for 5 tabs/);
    // the stale tabs' proposals now count, each moved by min(1, 1/(e·η·h·3)) of its size
    const dropped = s.staleDropped;
    const h = s.staleness!.curvature;
    const expected = stalenessStepScale(3, s.learningRate, h);
    const from = coordinator.iteration;
    await waitFor(() => coordinator.iteration >= from + 5, '5 more iterations', 30_000);
    s = await fullStatus();
    for (const w of stale) expect(w.acks.slice(-3).every((a) => a.ok)).toBe(true);
    if (expected < 1) {
      expect(s.stepScaled.proposals).toBeGreaterThan(0);
      expect(s.stepScaled.minScale).toBeCloseTo(expected, 6);
    } else {
      expect(s.stepScaled.proposals).toBe(0);
    }
    // a proposal dropped at S = 2 may have been in flight; none once S moved
    expect(s.staleDropped - dropped).toBeLessThanOrEqual(2);
    console.log(
      `auto: S=${s.stalenessThreshold}, h=${h}, η=${s.learningRate}, scale=${expected}, ${s.stalenessAuto!.reason}`,
    );
  }, 120_000);

  it('staleness "auto" whose first threshold drops every proposal still moves it, and training starts', async () => {
    const coordinator = await coordinatorWith(
      {
        staleness: 'auto',
        cluster: { size: 1, redundancy: 0 },
        optimizer: { kind: 'sgd', learningRate: 0.05, momentum: 0.9 },
      },
      { minTabs: 3 },
    );
    for (let i = 0; i < 3; i++) await worker(coordinator.url, { staleness: 3 });
    // nothing closes at S = 2; the drops themselves are measured and analysed
    await waitFor(() => coordinator.iteration >= 3, 'iterations once S moved', 60_000);
    const s = (await (await fetch(`${coordinator.url}/api/status`)).json()) as DashboardStatus;
    expect(s.staleDropped).toBeGreaterThan(0);
    expect(s.stalenessThreshold).toBeGreaterThanOrEqual(3);
    expect(s.stalenessAuto?.reason).toMatch(/^S 2 → \d+/);
  }, 90_000);

  it('refuses each kind of malformed event with its code while training goes on', async () => {
    const coordinator = await coordinatorWith(
      { cluster: { size: 1, redundancy: 0 } },
      { minTabs: 3 },
    );
    const honest = await worker(coordinator.url);
    // the misbehaving tab also proposes honestly each iteration, so its cluster keeps voting
    const bad = await worker(coordinator.url);
    const other = await worker(coordinator.url);
    await waitFor(() => bad.placement !== undefined && other.placement !== undefined, 'placements');
    const meta = () => ({
      clusterId: bad.placement!.clusterId,
      contributors: [0],
      inputs: [{ slot: 0, digest: '1'.repeat(64) }],
    });
    const d = coordinator.dimension;
    const fp32Frame = (
      values: Float32Array,
      jobId = coordinator.jobId,
      iteration = bad.iteration,
    ) => {
      const { bytes, payload } = allocateFrame(
        {
          codec: 'fp32',
          jobId,
          iteration,
          round: 0,
          senderSlot: 0,
          dimension: values.length,
          blockSize: 0,
        },
        values.length * 4,
      );
      payload.set(new Uint8Array(values.buffer));
      return sealFrame(bytes);
    };
    const start = coordinator.iteration;

    expect(await bad.sendProposal({ clusterId: 'x' }, fp32Frame(new Float32Array(d)))).toEqual({
      ok: false,
      code: 'invalid-message',
    });
    expect(await bad.sendProposal(meta(), 'not bytes')).toEqual({
      ok: false,
      code: 'invalid-message',
    });
    expect(await bad.sendProposal(meta(), new Uint8Array(d * 4 + 4096))).toEqual({
      ok: false,
      code: 'payload-too-large',
    });
    const withNaN = new Float32Array(d);
    withNaN[17] = Number.NaN;
    expect(await bad.sendProposal(meta(), fp32Frame(withNaN))).toEqual({
      ok: false,
      code: 'non-finite',
    });
    const withInf = new Float32Array(d);
    withInf[3] = Number.POSITIVE_INFINITY;
    expect(await bad.sendProposal(meta(), fp32Frame(withInf))).toEqual({
      ok: false,
      code: 'non-finite',
    });
    // a sign frame is checked without decoding (its scales): one with a NaN scale is refused
    const signs = encodeToFrame(
      getCodec('one-bit').createEncoder(d, { blockSize: 1024 }),
      new Float32Array(d).fill(0.01),
      { jobId: coordinator.jobId, iteration: bad.iteration, round: 0, senderSlot: 0 },
    );
    new DataView(signs.buffer, signs.byteOffset + FRAME_HEADER_BYTES).setFloat32(0, NaN, true);
    expect(await bad.sendProposal(meta(), sealFrame(signs))).toEqual({
      ok: false,
      code: 'non-finite',
    });
    expect(
      await bad.sendProposal(meta(), fp32Frame(new Float32Array(d), jobIdOf('another-job'))),
    ).toEqual({
      ok: false,
      code: 'wrong-job',
    });
    expect(
      await bad.sendProposal(
        meta(),
        fp32Frame(new Float32Array(d), coordinator.jobId, bad.iteration + 9),
      ),
    ).toEqual({ ok: false, code: 'wrong-iteration' });
    expect(await bad.sendProposal(meta(), fp32Frame(new Float32Array(d - 1)))).toEqual({
      ok: false,
      code: 'dimension-mismatch',
    });
    const tampered = fp32Frame(new Float32Array(d));
    tampered[100]! ^= 0xff;
    expect(await bad.sendProposal(meta(), tampered)).toEqual({
      ok: false,
      code: 'checksum-mismatch',
    });
    expect(await bad.sendProposal(meta(), tampered.subarray(0, 30))).toEqual({
      ok: false,
      code: 'truncated',
    });
    expect(
      await bad.sendProposal(
        { ...meta(), clusterId: other.placement!.clusterId },
        fp32Frame(new Float32Array(d)),
      ),
    ).toEqual({ ok: false, code: 'not-in-cluster' });

    // signaling to a tab outside the cluster, and a malformed signal
    bad.socket.emit('signal', { to: other.id, data: { type: 'offer', sdp: 'v=0' } });
    bad.socket.emit('signal', { to: 42 });
    await waitFor(() => bad.rejections.length >= 2, 'signal rejections');
    expect(bad.rejections.map((r) => r.code).sort()).toEqual(['invalid-message', 'not-in-cluster']);
    // a malformed report
    bad.socket.emit('report', { state: 'computing', steps: -1 });
    await waitFor(() => bad.rejections.length >= 3, 'report rejection');
    expect(bad.rejections[2]!.code).toBe('invalid-message');

    // a raw client: bad hello, fault injection refused, events before hello (the tab's parser,
    // as a tab's: the protocol's socket framing)
    const raw = io(`${coordinator.url}/worker`, {
      transports: ['websocket'],
      parser: tabParser,
      forceNew: true,
      reconnection: false,
    });
    await new Promise<void>((resolve) => raw.once('connect', () => resolve()));
    const badHello = await raw.emitWithAck('hello', { protocolVersion: 99, kind: 'browser' });
    expect(badHello.error.code).toBe('invalid-message');
    const faulty = await raw.emitWithAck('hello', {
      protocolVersion: PROTOCOL_VERSION,
      kind: 'browser',
      fault: 'nan',
    });
    expect(faulty.error.code).toBe('fault-injection-disabled');
    const early = await raw.emitWithAck('proposal', meta(), fp32Frame(new Float32Array(d)));
    expect(early.error.code).toBe('unknown-tab');
    raw.disconnect();

    // the honest tab kept training throughout, the model is finite, counts are visible
    await waitFor(() => coordinator.iteration >= start + 5, 'training to go on');
    expect(coordinator.base.every((x) => Number.isFinite(x))).toBe(true);
    expect(honest.rejections).toEqual([]);
    const s = await status(coordinator.url);
    for (const code of [
      'invalid-message',
      'non-finite',
      'wrong-job',
      'wrong-iteration',
      'checksum-mismatch',
      'not-in-cluster',
    ]) {
      expect(s.rejected[code]).toBeGreaterThanOrEqual(1);
    }
    const metrics = await (await fetch(`${coordinator.url}/metrics`)).text();
    expect(metrics).toContain('swarmgrad_rejected_messages_total{code="non-finite"}');
  });

  it('rate-limits a connection that floods events, and stays up', async () => {
    const coordinator = await coordinatorWith({}, {});
    const flood = await worker(coordinator.url, { autoPropose: false });
    for (let i = 0; i < 400; i++) flood.socket.emit('report', { bogus: i });
    await waitFor(() => flood.rejections.some((r) => r.code === 'rate-limited'), 'rate limit');
    const s = await status(coordinator.url);
    expect(s.rejected['rate-limited']).toBeGreaterThan(0);
  });

  it('refuses control without the admin token; pause stops iterations and resume restarts them', async () => {
    const coordinator = await coordinatorWith({ cluster: { size: 1, redundancy: 0 } }, {});
    await worker(coordinator.url);
    await waitFor(() => coordinator.iteration >= 2, 'training');
    const post = (body: unknown, token?: string) =>
      fetch(`${coordinator.url}/api/control`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    const noToken = await post({ action: 'pause' });
    expect(noToken.status).toBe(401);
    expect(((await noToken.json()) as { code: string }).code).toBe('unauthorized');
    expect((await post({ action: 'pause' }, 'wrong-token')).status).toBe(401);
    expect((await status(coordinator.url)).phase).toBe('training');

    const bad = await post({ action: 'set-learning-rate', learningRate: -1 }, 'test-token');
    expect(bad.status).toBe(400);

    expect((await post({ action: 'pause' }, 'test-token')).status).toBe(200);
    const paused = coordinator.iteration;
    await new Promise((r) => setTimeout(r, 500));
    expect(coordinator.iteration).toBeLessThanOrEqual(paused + 1);
    const s = await status(coordinator.url);
    expect(s.phase).toBe('paused');
    const frozen = s.iteration;
    await new Promise((r) => setTimeout(r, 300));
    expect((await status(coordinator.url)).iteration).toBe(frozen);

    expect(
      (await post({ action: 'set-learning-rate', learningRate: 0.2 }, 'test-token')).status,
    ).toBe(200);
    expect((await post({ action: 'resume' }, 'test-token')).status).toBe(200);
    await waitFor(() => coordinator.iteration >= frozen + 3, 'training to resume');
    expect(coordinator.learningRate).toBe(0.2);
  });

  it('serves the agreed model in TF.js layers format, loadable by tf.loadLayersModel', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    const tfl = await import('@tensorflow/tfjs-layers');
    await tf.setBackend('cpu');
    const live = await coordinatorWith({ cluster: { size: 1, redundancy: 0 } }, {});
    await worker(live.url);
    await waitFor(() => live.iteration >= 3, 'training');
    expect(live.control({ action: 'pause' }).ok).toBe(true); // freeze the base
    const model = await tfl.loadLayersModel(
      tf.io.http(`${live.url}/api/model/model.json`, { fetchFunc: fetch }),
    );
    const loaded = model.getWeights().flatMap((t) => Array.from(t.dataSync()));
    expect(loaded).toHaveLength(live.dimension);
    expect(Float32Array.from(loaded)).toEqual(live.base);
    const prediction = model.predict(tf.zeros([1, 784])) as { shape: number[] };
    expect(prediction.shape).toEqual([1, 10]);
  });

  it('coordinator egress per iteration grows linearly with the number of clusters (O(k·d))', async () => {
    const perIteration: number[] = [];
    for (const k of [2, 6]) {
      const coordinator = await coordinatorWith(
        { cluster: { size: 1, redundancy: 0 } },
        { minTabs: k },
      );
      for (let i = 0; i < k; i++) await worker(coordinator.url);
      await waitFor(() => coordinator.iteration >= 3, 'training');
      // bytes and iteration from the same scrape: iterations go on while it is fetched
      const metric = async (): Promise<[number, number]> => {
        const text = await (await fetch(`${coordinator.url}/metrics`)).text();
        const value = (pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? NaN);
        return [
          value(/^swarmgrad_wire_bytes_total\{path="broadcast"\} (\d+)$/m),
          value(/^swarmgrad_iteration (\d+)$/m),
        ];
      };
      const [b0, i0] = await metric();
      await waitFor(() => coordinator.iteration >= i0 + 5, 'five more iterations');
      const [b1, i1] = await metric();
      const bytes = (b1 - b0) / (i1 - i0);
      perIteration.push(bytes);
      // one 1-bit delta frame per tab: about d/8 bytes plus scales and header, never fp32
      expect(bytes / k).toBeLessThan((coordinator.dimension / 8) * 1.1 + 200);
    }
    const ratio = perIteration[1]! / perIteration[0]!;
    expect(ratio).toBeGreaterThan(2.5); // 3× the clusters…
    expect(ratio).toBeLessThan(3.5); // …3× the egress, not 9×
  });

  it('exposes Prometheus metrics and a status with the documented fields', async () => {
    const coordinator = await coordinatorWith({}, {});
    await worker(coordinator.url);
    await worker(coordinator.url);
    await waitFor(() => coordinator.iteration >= 2, 'training');
    const s = (await (await fetch(`${coordinator.url}/api/status`)).json()) as Record<
      string,
      unknown
    >;
    for (const key of ['iteration', 'phase', 'tabs', 'clusters', 'loss', 'accuracy', 'wire'])
      expect(s).toHaveProperty(key);
    expect(s.wire).toHaveProperty('bytesSent');
    expect(s.wire).toHaveProperty('fp32EquivalentBytes');
    const response = await fetch(`${coordinator.url}/metrics`);
    const text = await response.text();
    for (const name of [
      'swarmgrad_tabs 2',
      'swarmgrad_clusters 1',
      'swarmgrad_iteration',
      'swarmgrad_round_close_seconds_bucket',
      'swarmgrad_wire_bytes_total',
    ]) {
      expect(text).toContain(name);
    }
    const page = await fetch(`${coordinator.url}/`);
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
  });
});
