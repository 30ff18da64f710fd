import { describe, expect, it } from 'vitest';
import { simulate } from '../src/simulator.ts';
import {
  closeTimeOf,
  CostModelError,
  fitCostModel,
  nodesFor,
  predictCost,
  tabsWithin,
  validateCostModel,
  type CostMeasurement,
} from '../src/cost-model.ts';

/** Rows a coordinator with known costs would give (clusters of 8, 1,144-byte frames). */
function rows(
  truth: { a: number; b: number; r: number; p50: number; p99: number },
  runs: { tabs: number; nodes: number }[],
): CostMeasurement[] {
  return runs.map(({ tabs, nodes }) => {
    const perNode = truth.a + (truth.b * tabs) / nodes + (truth.r * tabs * (nodes - 1)) / nodes;
    return {
      tabs,
      nodes,
      clusters: tabs / 8,
      coordinatorCpuMsPerIteration: perNode * nodes,
      closeP50Ms: truth.p50 * perNode,
      closeP99Ms: truth.p99 * perNode,
      broadcastBytesPerIterationPerTab: 1144,
    };
  });
}

const truth = { a: 12, b: 0.14, r: 0.05, p50: 0.45, p99: 0.65 };
const runs = [
  { tabs: 1000, nodes: 1 },
  { tabs: 5000, nodes: 1 },
  { tabs: 10000, nodes: 1 },
  { tabs: 1000, nodes: 3 },
  { tabs: 5000, nodes: 3 },
];

describe('coordinator cost model', () => {
  it('recovers the costs that made the rows', () => {
    const model = fitCostModel(rows(truth, runs));
    expect(model.fixedMs).toBeCloseTo(truth.a, 6);
    expect(model.perTabMs).toBeCloseTo(truth.b, 9);
    expect(model.replicatedPerTabMs).toBeCloseTo(truth.r, 9);
    expect(model.closeP50PerCpuMs).toBeCloseTo(truth.p50, 9);
    expect(model.closeP99PerCpuMs).toBeCloseTo(truth.p99, 9);
    expect(model.multiNodeCloseP99PerCpuMs).toBeCloseTo(truth.p99, 9);
    expect(model.clusterSize).toBe(8);
    expect(model.fittedOn).toEqual({ single: 3, multi: 2 });
    const at1m = predictCost(model, 1_000_000, 1);
    expect(at1m.cpuMsPerIterationPerNode).toBeCloseTo(truth.a + truth.b * 1e6, 3);
    expect(at1m.closeP99Ms).toBeCloseTo(truth.p99 * (truth.a + truth.b * 1e6), 2);
    expect(at1m.egressBytesPerIteration).toEqual({ direct: 1144e6, cluster: 1144e6 / 8 });
  });

  it('predicts its largest runs from the smaller ones, and misses when the truth bends', () => {
    const validated = validateCostModel(rows(truth, runs));
    expect(validated.map((v) => [v.measured.tabs, v.measured.nodes])).toEqual([[10000, 1]]);
    const [{ measured, predicted }] = validated as [(typeof validated)[number]];
    expect(predicted.closeP99Ms).toBeCloseTo(measured.closeP99Ms, 6);
    // a quadratic coordinator: fitted on 1k and 5k, the 10k prediction falls short
    const bent = rows(truth, runs).map((row) => ({
      ...row,
      coordinatorCpuMsPerIteration: row.coordinatorCpuMsPerIteration + 1e-5 * row.tabs ** 2,
    }));
    const [miss] = validateCostModel(bent);
    expect(miss!.predicted.cpuMsPerIterationSummed).toBeLessThan(
      0.9 * miss!.measured.coordinatorCpuMsPerIteration,
    );
  });

  it('says how many tabs fit a close-time budget, and that replication caps every node count', () => {
    const model = fitCostModel(rows(truth, runs));
    const one = tabsWithin(model, 200, 1);
    // at that count one node is within the budget, and one tab more is not
    expect(predictCost(model, one, 1).closeP99Ms).toBeLessThanOrEqual(200);
    expect(predictCost(model, one + 1, 1).closeP99Ms).toBeGreaterThan(200);
    // more nodes hold more tabs, but never more than the replicated cost allows
    expect(tabsWithin(model, 200, 4)).toBeGreaterThan(one);
    const cap = (200 / truth.p99 - truth.a) / truth.r;
    expect(tabsWithin(model, 200, 1000)).toBeLessThan(cap);
    expect(nodesFor(model, 1_000_000, 200)).toBeUndefined();
    const k = nodesFor(model, 2 * one, 200)!;
    expect(tabsWithin(model, 200, k)).toBeGreaterThanOrEqual(2 * one);
    expect(tabsWithin(model, 200, k - 1)).toBeLessThan(2 * one);
    // nodes that divide the work (no replicated cost) scale without a cap
    const divided = { ...model, replicatedPerTabMs: 0 };
    // several nodes' closes that wait longer per ms of CPU hold fewer tabs
    const slowLog = { ...model, multiNodeCloseP99PerCpuMs: 2 * model.multiNodeCloseP99PerCpuMs };
    expect(tabsWithin(slowLog, 200, 4)).toBeLessThan(tabsWithin(model, 200, 4));
    expect(tabsWithin(slowLog, 200, 1)).toBe(one);
    expect(nodesFor(divided, 1_000_000, 200)).toBeDefined();
    expect(tabsWithin(model, 1, 1)).toBe(0);
  });

  it('refuses rows it cannot fit, and leaves failed runs out', () => {
    expect(() => fitCostModel(rows(truth, [{ tabs: 1000, nodes: 1 }]))).toThrow(CostModelError);
    const failed = { ...rows(truth, [{ tabs: 2000, nodes: 1 }])[0]!, closeP99Ms: Number.NaN };
    expect(() => fitCostModel([...rows(truth, [{ tabs: 1000, nodes: 1 }]), failed])).toThrow(
      /two or more tab counts/,
    );
  });
});

describe('coordinator cost model: a fixed cost is never negative', () => {
  it('fits through the origin when the free line would cross below it', () => {
    // per-tab cost growing with the tabs: the free line's intercept is negative
    const bending = [1000, 5000, 10000].map((tabs) => ({
      tabs,
      nodes: 1,
      clusters: tabs / 8,
      coordinatorCpuMsPerIteration: 0.1 * tabs + 4e-6 * tabs ** 2,
      closeP50Ms: 1,
      closeP99Ms: 2,
      broadcastBytesPerIterationPerTab: 1000,
    }));
    const model = fitCostModel(bending);
    expect(model.fixedMs).toBe(0);
    const sse = (b: number) =>
      bending.reduce((s, r) => s + (r.coordinatorCpuMsPerIteration - b * r.tabs) ** 2, 0);
    expect(sse(model.perTabMs)).toBeLessThan(sse(model.perTabMs * 1.001));
    expect(sse(model.perTabMs)).toBeLessThan(sse(model.perTabMs * 0.999));
  });
});

describe('the simulator with the coordinator’s modelled close time', () => {
  it('is the model’s p50 close time, fixed and per worker', () => {
    const model = fitCostModel(rows(truth, runs));
    for (const nodes of [1, 3]) {
      const close = closeTimeOf(model, nodes);
      for (const tabs of [16, 10_000])
        expect(close.fixedMs + close.perWorkerMs * tabs).toBeCloseTo(
          predictCost(model, tabs, nodes).closeP50Ms,
          6,
        );
    }
  });

  it('delays every next iteration by it: simulated time grows by iterations × close time', () => {
    const base = {
      seed: 3,
      workers: 16,
      cluster: { size: 4 },
      stop: { maxIterations: 20 },
      evalEvery: 20,
    };
    const without = simulate(base);
    const close = { fixedMs: 150, perWorkerMs: 10 };
    const withClose = simulate({ ...base, timing: { coordinatorClose: close } });
    expect(without.final.iteration).toBe(20);
    expect(withClose.final.iteration).toBe(20);
    const perIteration = (close.fixedMs + 16 * close.perWorkerMs) / 1000;
    const added = withClose.final.time - without.final.time;
    // every close but the last delays the next start; workers that left meanwhile do not count
    expect(added).toBeGreaterThan(0.9 * 19 * perIteration);
    expect(added).toBeLessThan(1.1 * 20 * perIteration);
    expect(() =>
      simulate({ ...base, timing: { coordinatorClose: { fixedMs: -1, perWorkerMs: 0 } } }),
    ).toThrow(/coordinatorClose.fixedMs/);
  });
});
