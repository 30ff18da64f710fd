/**
 * Simulator scale benchmark (issue 7): wall time of 10,000 virtual workers × 100 iterations of
 * softmax regression on packages/sim (the product's pipeline: one-bit + error feedback frames,
 * staleness threshold 2, clusters of 8 — packages/sim/src/scale.ts).
 *
 *   npm run bench -- sim [--workers N] [--iterations N] [--threads T[,T…]]
 *                        [--modes average,majority] [--json]
 *
 * One row per (agreement mode, thread count): 'average' is the convex-job mode between clusters,
 * 'majority' the majority-cluster approximate agreement; threads = 1 runs the rounds' content
 * inline, 2 in two worker threads (identical results, different wall time). Default: both modes,
 * 2 threads. Target: ≤ 60 s. The load average is printed because the reference machine is shared.
 */
import { loadavg } from 'node:os';
import { scaleScenario, simulate } from '@swarmgrad/sim';

function option(args: string[], name: string, fallback: string): string {
  const at = args.indexOf(name);
  return at < 0 ? fallback : (args[at + 1] ?? fallback);
}

export async function run(args: string[]): Promise<void> {
  const workers = Number(option(args, '--workers', '10000'));
  const iterations = Number(option(args, '--iterations', '100'));
  const threads = option(args, '--threads', '2')
    .split(',')
    .map((t) => Math.max(1, Number(t) || 1));
  const modes = option(args, '--modes', 'average,majority')
    .split(',')
    .filter((m): m is 'average' | 'majority' => m === 'average' || m === 'majority');
  const json = args.includes('--json');
  const rows: {
    mode: string;
    threads: number;
    wallS: number;
    msPerIteration: number;
    simulatedS: number;
    accuracy: number;
    bytesSent: number;
    loadBefore: number;
    loadAfter: number;
  }[] = [];
  for (const mode of modes) {
    for (const t of threads) {
      const loadBefore = loadavg()[0]!;
      const start = performance.now();
      const r = simulate(scaleScenario(iterations, workers, mode), { threads: t });
      const wallS = (performance.now() - start) / 1000;
      rows.push({
        mode,
        threads: t,
        wallS,
        msPerIteration: (1000 * wallS) / r.final.iteration,
        simulatedS: r.final.time,
        accuracy: r.final.accuracy,
        bytesSent: r.bytes.peer + r.bytes.proposal,
        loadBefore,
        loadAfter: loadavg()[0]!,
      });
      await Promise.resolve();
    }
  }
  if (json) {
    console.log(JSON.stringify({ bench: 'sim', workers, iterations, node: process.version, rows }));
    return;
  }
  console.log(
    `sim bench: ${workers} workers (clusters of 8), ${iterations} iterations of softmax regression, ` +
      `${process.version}; wall time includes setup (data, placement, thread start)`,
  );
  console.log(
    '| agreement | threads | wall s | ms / iteration | simulated s | final accuracy | GB sent | load avg before → after | ≤ 60 s |',
  );
  console.log(
    '|-----------|--------:|-------:|---------------:|------------:|---------------:|--------:|------------------------:|:------:|',
  );
  for (const r of rows) {
    console.log(
      `| ${r.mode} | ${r.threads} | ${r.wallS.toFixed(1)} | ${r.msPerIteration.toFixed(0)} | ${r.simulatedS.toFixed(1)} | ` +
        `${r.accuracy.toFixed(3)} | ${(r.bytesSent / 1e9).toFixed(2)} | ${r.loadBefore.toFixed(2)} → ${r.loadAfter.toFixed(2)} | ` +
        `${r.wallS <= 60 ? 'met' : 'missed'} |`,
    );
  }
}
