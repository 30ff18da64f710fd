/**
 * Coordinator cost model (issue 17, item 5): fits packages/sim's cost model to the JSON lines of
 * `npm run bench -- coordinator --json` runs and predicts beyond this machine.
 *
 *   npm run bench -- coordinator --tabs 1000,5000,10000 --json > k1.jsonl
 *   npm run bench -- coordinator --nodes 3 --tabs 1000,5000 --json > k3.jsonl
 *   npm run bench -- cost-model k1.jsonl k3.jsonl [--budget-ms 200] [--json]
 *
 * Prints the fitted costs; the out-of-sample check (each larger tab count predicted by the model
 * fitted on the smaller ones, beside what was measured); predictions at 10k, 100k and 1M tabs on
 * 1, 3 and 10 nodes; and the tabs a swarm of K nodes holds with round close p99 within the budget.
 * Lines that are not coordinator rows, and failed runs, are skipped.
 */
import { readFileSync } from 'node:fs';
import {
  fitCostModel,
  nodesFor,
  predictCost,
  tabsWithin,
  validateCostModel,
  type CostMeasurement,
} from '@swarmgrad/sim';

function option(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at < 0 ? fallback : (args[at + 1] ?? fallback);
}

function measurements(paths: string[]): CostMeasurement[] {
  const rows: CostMeasurement[] = [];
  for (const path of paths) {
    for (const [index, line] of readFileSync(path, 'utf8').split('\n').entries()) {
      if (!line.startsWith('{')) continue;
      let row: Partial<CostMeasurement> & { bench?: string };
      try {
        row = JSON.parse(line) as typeof row;
      } catch (error) {
        throw new Error(`${path}:${index + 1}: not a JSON line (${(error as Error).message})`, {
          cause: error,
        });
      }
      if (row.bench !== 'coordinator') continue;
      rows.push({
        tabs: Number(row.tabs),
        nodes: Number(row.nodes),
        clusters: Number(row.clusters),
        coordinatorCpuMsPerIteration: Number(row.coordinatorCpuMsPerIteration),
        closeP50Ms: Number(row.closeP50Ms),
        closeP99Ms: Number(row.closeP99Ms),
        broadcastBytesPerIterationPerTab: Number(row.broadcastBytesPerIterationPerTab),
      });
    }
  }
  return rows;
}

const round = (v: number) => Math.round(v);
const count = (v: number) => v.toLocaleString('en-US');

export async function run(args: string[]): Promise<void> {
  const budget = Number(option(args, '--budget-ms', '200'));
  const json = args.includes('--json');
  const skip = new Set(['--budget-ms']);
  const paths = args.filter((a, i) => !a.startsWith('--') && !skip.has(args[i - 1] ?? ''));
  if (paths.length === 0) {
    console.error(
      'usage: npm run bench -- cost-model <coordinator --json lines>… [--budget-ms 200] [--json]',
    );
    process.exit(1);
  }
  const rows = measurements(paths);
  const model = fitCostModel(rows);
  const validation = validateCostModel(rows).map(({ measured, predicted }) => ({
    tabs: measured.tabs,
    nodes: measured.nodes,
    cpuMs: {
      measured: measured.coordinatorCpuMsPerIteration,
      predicted: predicted.cpuMsPerIterationSummed,
    },
    closeP50Ms: { measured: measured.closeP50Ms, predicted: predicted.closeP50Ms },
    closeP99Ms: { measured: measured.closeP99Ms, predicted: predicted.closeP99Ms },
  }));
  const predictions = [10_000, 100_000, 1_000_000].flatMap((tabs) =>
    [1, 3, 10].map((nodes) => predictCost(model, tabs, nodes)),
  );
  const capacity = [1, 3, 10, 100].map((nodes) => ({
    nodes,
    tabs: tabsWithin(model, budget, nodes),
  }));
  const needed = [100_000, 1_000_000].map((tabs) => ({
    tabs,
    nodes: nodesFor(model, tabs, budget) ?? null,
  }));
  const dividedModel = { ...model, replicatedPerTabMs: 0 };
  const neededDivided = [100_000, 1_000_000].map((tabs) => ({
    tabs,
    nodes: nodesFor(dividedModel, tabs, budget) ?? null,
  }));
  if (json) {
    console.log(
      JSON.stringify({
        bench: 'cost-model',
        budgetMs: budget,
        model,
        validation,
        predictions,
        capacity,
        needed,
        neededDivided,
      }),
    );
    return;
  }
  console.log(
    `fitted on ${model.fittedOn.single} one-node and ${model.fittedOn.multi} multi-node rows: ` +
      `CPU per iteration per node = ${model.fixedMs.toFixed(1)} ms + ${(1000 * model.perTabMs).toFixed(1)} µs × its tabs` +
      ` + ${(1000 * model.replicatedPerTabMs).toFixed(1)} µs × the other nodes' tabs; ` +
      `close p50 = ${model.closeP50PerCpuMs.toFixed(2)} × CPU, p99 = ${model.closeP99PerCpuMs.toFixed(2)} × CPU; ` +
      `${round(model.frameBytes)} B iteration frame, clusters of ${model.clusterSize.toFixed(0)}`,
  );
  console.log('\nout of sample (fitted on the smaller runs only):');
  console.log('| tabs | nodes | CPU ms/it measured / predicted | close p50 ms | close p99 ms |');
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  for (const v of validation)
    console.log(
      `| ${count(v.tabs)} | ${v.nodes} | ${round(v.cpuMs.measured)} / ${round(v.cpuMs.predicted)} | ` +
        `${round(v.closeP50Ms.measured)} / ${round(v.closeP50Ms.predicted)} | ${round(v.closeP99Ms.measured)} / ${round(v.closeP99Ms.predicted)} |`,
    );
  console.log('\npredicted:');
  console.log(
    '| tabs | nodes | CPU ms/it per node | close p50 / p99 ms | egress MB/it direct / cluster |',
  );
  console.log('| ---: | ---: | ---: | ---: | ---: |');
  for (const p of predictions)
    console.log(
      `| ${count(p.tabs)} | ${p.nodes} | ${count(round(p.cpuMsPerIterationPerNode))} | ` +
        `${count(round(p.closeP50Ms))} / ${count(round(p.closeP99Ms))} | ` +
        `${(p.egressBytesPerIteration.direct / 1e6).toFixed(1)} / ${(p.egressBytesPerIteration.cluster / 1e6).toFixed(1)} |`,
    );
  console.log(
    `\ntabs held with close p99 ≤ ${budget} ms: ${capacity.map((c) => `${c.nodes} node(s) ${count(c.tabs)}`).join('; ')}`,
  );
  if (model.fittedOn.multi === 0)
    console.log(
      "(no multi-node rows: the cost of applying other nodes' commands is not measured, taken as 0)",
    );
  for (const [label, list] of [
    ['nodes needed as they work today (every node applies every command)', needed],
    ['nodes needed if nodes divided the work (no replicated cost)', neededDivided],
  ] as const)
    console.log(
      `${label}: ${list.map((n) => `${count(n.tabs)} tabs: ${n.nodes ?? 'none suffices'}`).join('; ')}`,
    );
}
