/**
 * What the dashboard reads beyond the round engine: the staleness analysis on measured delays,
 * the per-iteration series and its CSV, and the coordinator surface built on them (training
 * loss from reports, /api/metrics.csv, the token check).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DashboardMetrics, metricsCsv } from '../src/dashboard.ts';
import type { Coordinator } from '../src/index.ts';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

describe('DashboardMetrics', () => {
  it('analyses measured delays off the hot path and reports a stability margin', async () => {
    const metrics = new DashboardMetrics(2, 'test');
    const input = { learningRate: 0.1, activeTabs: 4, threshold: 2, dropped: 3 };
    expect(metrics.staleness(input)).toBeNull(); // nothing measured
    for (let i = 0; i < 60; i++) metrics.recordAge(i % 3);
    metrics.recordIteration(
      { iteration: 1, at: Date.now(), trainingLoss: 1, bytesSent: 10, fp32EquivalentBytes: 320 },
      0.2,
      [0, 1],
    );
    expect(metrics.staleness(input)).toBeNull(); // started, not finished
    await metrics.settled();
    const summary = metrics.staleness(input)!;
    expect(summary.samples).toBe(60);
    expect(summary.histogram).toEqual([
      { age: 0, count: 20 },
      { age: 1, count: 20 },
      { age: 2, count: 20 },
    ]);
    expect(summary.meanAge).toBeCloseTo(1, 9);
    expect(summary.dropped).toBe(3);
    expect(summary.meanTaskSeconds).toBeCloseTo(0.2, 9);
    // small η·h: the current point is stable, its margin is −Re(s*)
    expect(summary.current.stable).toBe(true);
    expect(summary.current.margin).toBeCloseTo(-summary.current.re, 12);
    expect(summary.byWorkers.map((p) => p.workers)).toContain(4);
    expect(summary.recommended.reason.length).toBeGreaterThan(0);
    expect(metrics.lastMajority).toEqual([0, 1]);
  });

  it('finds that a large learning rate with stale updates is unstable', async () => {
    const metrics = new DashboardMetrics(40, 'test');
    for (let i = 0; i < 60; i++) metrics.recordAge(2);
    metrics.recordIteration(
      { iteration: 1, at: 0, trainingLoss: null, bytesSent: 0, fp32EquivalentBytes: 0 },
      0.1,
      [],
    );
    const input = { learningRate: 0.5, activeTabs: 4, threshold: 2, dropped: 0 };
    metrics.staleness(input);
    await metrics.settled();
    // fixed delay: a·τ = η·h·D = 0.5·40·2 = 40 > π/2
    const summary = metrics.staleness(input)!;
    expect(summary.current.aTau).toBeCloseTo(40, 6);
    expect(summary.current.stable).toBe(false);
  });

  it('thins the series evenly and keeps the last point', () => {
    const metrics = new DashboardMetrics(1, 'test');
    for (let i = 1; i <= 1000; i++) {
      metrics.recordIteration(
        { iteration: i, at: i, trainingLoss: null, bytesSent: i, fp32EquivalentBytes: 32 * i },
        0.01,
        [],
      );
    }
    const thin = metrics.thinnedSeries(100);
    expect(thin).toHaveLength(100);
    expect(thin[0]!.iteration).toBe(1);
    expect(thin.at(-1)!.iteration).toBe(1000);
    expect(metrics.thinnedSeries(5000)).toHaveLength(1000);
  });
});

describe('metricsCsv', () => {
  it('joins iterations and evaluations by iteration', () => {
    const csv = metricsCsv(
      [
        { iteration: 1, at: 0, trainingLoss: 2.5, bytesSent: 100, fp32EquivalentBytes: 3200 },
        { iteration: 2, at: 1000, trainingLoss: null, bytesSent: 200, fp32EquivalentBytes: 6400 },
      ],
      [{ iteration: 2, loss: 0.5, accuracy: 0.8, at: 1500 }],
    ).split('\n');
    expect(csv[0]).toBe(
      'iteration,time,heldout_loss,heldout_accuracy,training_loss,bytes_sent,fp32_equivalent_bytes',
    );
    expect(csv[1]).toBe('1,1970-01-01T00:00:00.000Z,,,2.5,100,3200');
    expect(csv[2]).toBe('2,1970-01-01T00:00:01.000Z,0.5,0.8,,200,6400');
    expect(csv[3]).toBe('');
  });
});

describe('coordinator: dashboard surface', () => {
  const running: Coordinator[] = [];
  const workers: FakeWorker[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) w.close();
    for (const c of running.splice(0)) await c.close({ checkpoint: false });
  });

  it('averages reported training loss, serves the CSV and checks the token', async () => {
    const coordinator = await startCoordinator();
    running.push(coordinator);
    for (let i = 0; i < 2; i++) workers.push(await FakeWorker.connect({ url: coordinator.url }));
    const report = (loss: number) => ({
      state: 'computing',
      steps: 1,
      examplesPerSecond: 128,
      computeMs: 1,
      wallMs: 1,
      peerBytesSent: 0,
      peerFp32Bytes: 0,
      trainingLoss: loss,
      throttle: 1,
    });
    workers[0]!.socket.emit('report', report(1));
    workers[1]!.socket.emit('report', report(2));
    await waitFor(() => coordinator.trainingLoss() === 1.5, 'training loss 1.5');
    await waitFor(() => coordinator.iteration >= 5, 'iteration 5');
    const status = coordinator.status();
    expect(status.trainingLoss).toBe(1.5);
    expect(status.clusters[0]!.members[0]!.stepsPerSecond).toBe(128 / 64);
    expect(status.quorum.lastMajority.length).toBeGreaterThan(0);

    const csv = await fetch(`${coordinator.url}/api/metrics.csv`);
    expect(csv.headers.get('content-disposition')).toContain('test-softmax-metrics.csv');
    const rows = (await csv.text()).trim().split('\n');
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.slice(1).some((r) => r.split(',')[4] === '1.5')).toBe(true);

    const denied = await fetch(`${coordinator.url}/api/control`);
    expect(denied.status).toBe(401);
    const allowed = await fetch(`${coordinator.url}/api/control`, {
      headers: { authorization: 'Bearer test-token' },
    });
    expect(allowed.status).toBe(200);
    expect(coordinator.phase).toBe('training');

    // the quarantine a tab reports reaches the event log
    workers[1]!.socket.emit('report', { ...report(2), state: 'quarantined' });
    await waitFor(
      () => coordinator.events.some((e) => e.kind === 'tab-quarantined'),
      'tab-quarantined event',
    );
  });
});
