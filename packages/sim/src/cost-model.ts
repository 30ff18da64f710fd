/**
 * A cost model of the coordinator, fitted to `npm run bench -- coordinator --json` rows, that
 * predicts what one machine cannot run: round close time and tabs per node at 100k and 1M tabs
 * (issue 17, item 5).
 *
 * What it assumes (each checked against the measurements by `validate`: fit on the smaller
 * runs, predict the largest, compare):
 * - The coordinator's CPU per iteration is linear in the tabs: C₁(N) = a + b·N on one node, a ≥ 0
 *   (b: a tab's proposal share, confirmations, placement and its copy of the broadcast). Costs
 *   per tab that grow with the tabs show as a = 0 and as predictions below the larger runs.
 * - With K nodes sharing one swarm through the command log, each node pays its own tabs' share
 *   and applies every other node's commands: summed C_K(N) = K·a + b·N + r·(K − 1)·N, one node
 *   a + b·N/K + r·N·(K − 1)/K. r is what replication costs per tab; r = 0 would be nodes that
 *   divide the work (issue 17, item 4). As K grows a node's CPU tends to a + r·N, so with r > 0
 *   no number of nodes holds more than (budget − a)/r tabs.
 * - A single busy thread closes rounds in time proportional to its CPU per iteration:
 *   close_p = β_p·C_node(N) (fitted through the origin for p50 and p99, apart for one node and
 *   for several, whose closes also wait for the command log).
 * - Egress per iteration: one iteration frame of `frameBytes` per tab (direct), or per cluster
 *   (dissemination through the clusters).
 * Fits are ordinary least squares; every input is a measured row, nothing is assumed constant
 * that the rows can give.
 */

/** What the model reads of one `bench coordinator --json` line. */
export interface CostMeasurement {
  tabs: number;
  nodes: number;
  clusters: number;
  /** Summed over the nodes. */
  coordinatorCpuMsPerIteration: number;
  closeP50Ms: number;
  closeP99Ms: number;
  broadcastBytesPerIterationPerTab: number;
}

export interface CostModel {
  /** ms per iteration, fixed, per node. */
  fixedMs: number;
  /** ms per iteration per tab, on the node that holds it. */
  perTabMs: number;
  /** ms per iteration per tab held elsewhere, on every other node (0 without K > 1 rows). */
  replicatedPerTabMs: number;
  /**
   * close p50 and p99 per ms of a node's CPU per iteration, on one node and on several (whose
   * closes also wait for the command log's round trip; the one-node ratios without K > 1 rows).
   */
  closeP50PerCpuMs: number;
  closeP99PerCpuMs: number;
  multiNodeCloseP50PerCpuMs: number;
  multiNodeCloseP99PerCpuMs: number;
  /** Iteration frame bytes per tab (direct dissemination), from the rows. */
  frameBytes: number;
  /** Tabs per cluster, from the rows (tabs / clusters). */
  clusterSize: number;
  /** Rows fitted: how many with one node, how many with several. */
  fittedOn: { single: number; multi: number };
}

export interface CostPrediction {
  tabs: number;
  nodes: number;
  cpuMsPerIterationPerNode: number;
  cpuMsPerIterationSummed: number;
  closeP50Ms: number;
  closeP99Ms: number;
  /** Coordinator egress per iteration, all nodes: iteration frames to every tab, or per cluster. */
  egressBytesPerIteration: { direct: number; cluster: number };
}

export class CostModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CostModelError';
  }
}

/** Least squares y = a + b·x; needs two distinct x. */
function fitLine(points: readonly { x: number; y: number }[]): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  if (!(sxx > 0)) throw new CostModelError('the one-node rows need at least two tab counts');
  const b = sxy / sxx;
  return { a: my - b * mx, b };
}

/** Least squares y = k·x through the origin. */
function fitThroughOrigin(points: readonly { x: number; y: number }[]): number {
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += p.x * p.x;
    sxy += p.x * p.y;
  }
  return sxx > 0 ? sxy / sxx : 0;
}

function usable(row: CostMeasurement): boolean {
  return (
    row.tabs > 0 &&
    row.nodes >= 1 &&
    row.clusters > 0 &&
    [row.coordinatorCpuMsPerIteration, row.closeP50Ms, row.closeP99Ms].every(
      (v) => Number.isFinite(v) && v > 0,
    )
  );
}

/** The model fitted to `rows` (failed runs, with no CPU or close time, are left out). */
export function fitCostModel(rows: readonly CostMeasurement[]): CostModel {
  const good = rows.filter(usable);
  const single = good.filter((r) => r.nodes === 1);
  const multi = good.filter((r) => r.nodes > 1);
  if (single.length < 2) {
    throw new CostModelError(
      `the model needs one-node runs at two or more tab counts; got ${single.length} usable`,
    );
  }
  const points = single.map((r) => ({ x: r.tabs, y: r.coordinatorCpuMsPerIteration }));
  // a fixed cost below zero means nothing; where the free fit puts it there (costs per tab that
  // grow with the tabs), the best fit with a ≥ 0 has a = 0 (the squared error is convex)
  const free = fitLine(points);
  const { a, b } = free.a >= 0 ? free : { a: 0, b: fitThroughOrigin(points) };
  // summed C_K − K·a − b·N = r·(K − 1)·N
  const r = fitThroughOrigin(
    multi.map((row) => ({
      x: (row.nodes - 1) * row.tabs,
      y: row.coordinatorCpuMsPerIteration - row.nodes * a - b * row.tabs,
    })),
  );
  const ratio = (list: readonly CostMeasurement[], close: (row: CostMeasurement) => number) =>
    fitThroughOrigin(
      list.map((row) => ({ x: row.coordinatorCpuMsPerIteration / row.nodes, y: close(row) })),
    );
  const p50 = ratio(single, (row) => row.closeP50Ms);
  const p99 = ratio(single, (row) => row.closeP99Ms);
  return {
    fixedMs: a,
    perTabMs: b,
    replicatedPerTabMs: Math.max(0, r),
    closeP50PerCpuMs: p50,
    closeP99PerCpuMs: p99,
    multiNodeCloseP50PerCpuMs: multi.length > 0 ? ratio(multi, (row) => row.closeP50Ms) : p50,
    multiNodeCloseP99PerCpuMs: multi.length > 0 ? ratio(multi, (row) => row.closeP99Ms) : p99,
    frameBytes: good.reduce((s, row) => s + row.broadcastBytesPerIterationPerTab, 0) / good.length,
    clusterSize: good.reduce((s, row) => s + row.tabs / row.clusters, 0) / good.length,
    fittedOn: { single: single.length, multi: multi.length },
  };
}

export function predictCost(model: CostModel, tabs: number, nodes = 1): CostPrediction {
  const perNode =
    model.fixedMs +
    (model.perTabMs * tabs) / nodes +
    (model.replicatedPerTabMs * tabs * (nodes - 1)) / nodes;
  return {
    tabs,
    nodes,
    cpuMsPerIterationPerNode: perNode,
    cpuMsPerIterationSummed: perNode * nodes,
    closeP50Ms: (nodes > 1 ? model.multiNodeCloseP50PerCpuMs : model.closeP50PerCpuMs) * perNode,
    closeP99Ms: (nodes > 1 ? model.multiNodeCloseP99PerCpuMs : model.closeP99PerCpuMs) * perNode,
    egressBytesPerIteration: {
      direct: model.frameBytes * tabs,
      cluster: (model.frameBytes * tabs) / model.clusterSize,
    },
  };
}

/**
 * The most tabs one swarm of `nodes` nodes holds with round close p99 ≤ `closeP99Ms`, or 0 when
 * even the fixed cost exceeds it.
 */
export function tabsWithin(model: CostModel, closeP99Ms: number, nodes = 1): number {
  const ratio = nodes > 1 ? model.multiNodeCloseP99PerCpuMs : model.closeP99PerCpuMs;
  const budget = closeP99Ms / ratio - model.fixedMs;
  if (!(budget > 0)) return 0;
  const perTab = model.perTabMs / nodes + (model.replicatedPerTabMs * (nodes - 1)) / nodes;
  return Math.floor(budget / perTab);
}

/** The fewest nodes (up to `maxNodes`) holding `tabs` within the close p99; undefined if none. */
export function nodesFor(
  model: CostModel,
  tabs: number,
  closeP99Ms: number,
  maxNodes = 10_000,
): number | undefined {
  for (let k = 1; k <= maxNodes; k *= 2) {
    if (tabsWithin(model, closeP99Ms, k) >= tabs) {
      // the first power of two that holds them; the fewest lies above the previous one
      let low = Math.max(1, k >> 1);
      let high = k;
      while (low < high) {
        const mid = (low + high) >> 1;
        if (tabsWithin(model, closeP99Ms, mid) >= tabs) high = mid;
        else low = mid + 1;
      }
      return low;
    }
  }
  return undefined;
}

export interface ValidationRow {
  measured: CostMeasurement;
  predicted: CostPrediction;
}

/**
 * Out-of-sample check: for each tab count above the two smallest one-node counts, the model
 * fitted on the rows with fewer tabs predicts the rows at that count (every K); a model that
 * only describes its own inputs would show it here.
 */
export function validateCostModel(rows: readonly CostMeasurement[]): ValidationRow[] {
  const good = rows.filter(usable);
  const counts = [...new Set(good.filter((r) => r.nodes === 1).map((r) => r.tabs))].sort(
    (x, y) => x - y,
  );
  const out: ValidationRow[] = [];
  for (const held of counts.slice(2)) {
    const model = fitCostModel(good.filter((r) => r.tabs < held));
    for (const row of good.filter((r) => r.tabs === held))
      out.push({ measured: row, predicted: predictCost(model, row.tabs, row.nodes) });
  }
  return out;
}

/**
 * A swarm's round close p50 as the simulator's `timing.coordinatorClose`: ms fixed and per live
 * worker on `nodes` nodes (each holding an equal share).
 */
export function closeTimeOf(model: CostModel, nodes = 1): { fixedMs: number; perWorkerMs: number } {
  const ratio = nodes > 1 ? model.multiNodeCloseP50PerCpuMs : model.closeP50PerCpuMs;
  const perWorker = model.perTabMs / nodes + (model.replicatedPerTabMs * (nodes - 1)) / nodes;
  return { fixedMs: ratio * model.fixedMs, perWorkerMs: ratio * perWorker };
}
