/**
 * Table 4 — seed 003 (dynamic number of backup workers): core's BackupWorkerPolicy, which picks
 * k = n − b each iteration to maximise k / E[T_(k)] from the last W iterations' arrival times,
 * against every static b, under stragglers that come and go. The predecessor paper reports up to
 * 3× faster training than the best static b.
 *
 * Setup: softmax regression on MNIST, one cluster of 16 workers aggregating with trimmed-mean at
 * f = 0 (the plain mean of the registers, as a robust rule: each round waits for the fastest
 * k of 16, the cluster's proposal closes the iteration at once), one example per worker per step
 * (the gradient-noise-limited regime where seed 003's linear-speed-up gain g(k) = k applies),
 * compute 0.02 s + Exp(0.03 s) per step, and straggler regimes of 10 s alternating between
 * "nobody slow" and "half of the workers 10× slower" (a fresh random half each time). Time to a
 * target accuracy, median over seeds.
 */
import { barChart, lineChart } from '../plot.ts';
import { simulate, type SimulationResult } from '../simulator.ts';
import type { BackupSpec, ScenarioInput } from '../scenario.ts';
import {
  describeRun,
  firstReaching,
  mean,
  median,
  num,
  pct,
  ratio,
  table,
  type Experiment,
  type ExperimentContext,
  type ExperimentOutput,
} from './common.ts';

const TARGET = 0.84;

interface Row {
  label: string;
  backup: BackupSpec;
  runs: SimulationResult[];
  times: number[];
  iterations: number[];
  meanK: number;
}

export const backupExperiment: Experiment = {
  id: 'backup',
  title: 'Table 4 — dynamic backup workers against static b under stragglers (seed 003)',
  run(ctx: ExperimentContext): ExperimentOutput {
    const seeds = ctx.quick ? [1] : [1, 2, 3, 4, 5];
    const statics = ctx.quick ? [0, 8] : [0, 2, 4, 6, 8, 10, 12];
    const specs: { label: string; backup: BackupSpec }[] = [
      ...statics.map((b) => ({
        label: `static b=${b}`,
        backup: { kind: 'static', backups: b } as BackupSpec,
      })),
      {
        label: 'dynamic (W=10)',
        backup: { kind: 'dynamic', window: 10, minWait: undefined, correlation: 0 },
      },
    ];
    const rows: Row[] = [];
    for (const spec of specs) {
      const runs: SimulationResult[] = [];
      for (const seed of seeds) {
        const scenario: ScenarioInput = {
          seed,
          workers: 16,
          cluster: { size: 16, rebalance: false },
          codec: { name: 'one-bit' },
          // the plain mean as a robust rule (trimming nothing), which waits for the fastest k ≥ 1;
          // the product's `mean` decodes a gradient code and, uncoded, waits for all m
          aggregator: { name: 'trimmed-mean', f: 0 },
          quarantine: { enabled: false },
          training: { learningRate: 0.5, batchSize: 1 },
          backup: spec.backup,
          agreement: { grace: 0 },
          timing: {
            compute: { kind: 'shifted-exponential', shift: 0.02, mean: 0.03 },
            latency: { kind: 'log-normal', median: 0.01, sigma: 0.3 },
            bandwidth: 2e6,
            stragglers: { period: 10, fraction: 0.5, factor: 10, alternate: true },
          },
          data: { evalLimit: 1000 },
          stop: { maxIterations: ctx.quick ? 60 : 1500, targetAccuracy: TARGET },
          evalEvery: 2,
        };
        const r = simulate(scenario);
        ctx.log(describeRun(`  ${spec.label} seed ${seed}`, r));
        runs.push(r);
      }
      const hits = runs.map((r) => firstReaching(r.history, TARGET));
      rows.push({
        ...spec,
        runs,
        times: hits.map((h) => h?.time ?? Infinity),
        iterations: hits.map((h) => h?.iteration ?? Infinity),
        meanK: mean(runs.flatMap((r) => r.waitCounts)),
      });
    }
    const staticRows = rows.filter((r) => r.backup.kind === 'static');
    const best = [...staticRows].sort((a, b) => median(a.times) - median(b.times))[0]!;
    const dynamic = rows.find((r) => r.backup.kind === 'dynamic')!;
    const waitAll = rows.find((r) => r.label === 'static b=0')!;
    const tableRows = rows.map((r) => [
      r.label,
      num(r.meanK, 1),
      num(median(r.iterations), 0),
      num(median(r.times), 1),
      r.times.map((t) => num(t, 1)).join(' / '),
      ratio(median(r.times) / median(dynamic.times)),
    ]);
    const bars = barChart({
      title: `Simulated time to ${pct(TARGET, 0)} (median of ${seeds.length} seeds)`,
      yLabel: 'seconds',
      categories: rows.map((r) => r.label),
      groups: [{ name: 'time to target', values: rows.map((r) => median(r.times)) }],
    });
    const dynRun = dynamic.runs[0]!;
    const kTrace = lineChart({
      title: 'Peers waited for (k) per iteration, dynamic policy, seed 1',
      xLabel: 'cluster round',
      yLabel: 'k = n − b',
      series: [
        {
          name: 'dynamic k',
          points: dynRun.waitCounts.map((k, i) => [i, k] as const),
        },
      ],
      yMin: 0,
      yMax: 17,
    });
    const products = staticRows
      .filter((r) => Number.isFinite(median(r.iterations)))
      .map(
        (r) =>
          median(r.iterations) * (16 - (r.backup.kind === 'static' ? (r.backup.backups ?? 0) : 0)),
      );
    const linearity =
      products.length === 0
        ? '—'
        : `${Math.min(...products).toFixed(0)}–${Math.max(...products).toFixed(0)}, within ` +
          `${(Math.max(...products) / Math.min(...products)).toFixed(1)}× of constant`;
    const speedBest = median(best.times) / median(dynamic.times);
    const speedAll = median(waitAll.times) / median(dynamic.times);
    const markdown = [
      `Softmax regression, one cluster of 16 workers, one-bit + EF messages averaged by trimmed-mean at f = 0 ` +
        `(a robust rule trimming nothing: the product's \`mean\` decodes a gradient code and, uncoded, waits for ` +
        `all 16), batch 1 per worker, η = 0.5, ` +
        `compute 0.02 s + Exp(0.03 s) per step, latency ~10 ms, 2 MB/s uplinks; every 10 s the stragglers change: ` +
        `none, then a random half of the workers 10× slower, and so on. Target ${pct(TARGET, 0)} on 1,000 held-out ` +
        `digits; ${seeds.length} seeds (${seeds.join(', ')}). "k" is the mean number of peers waited for; the ` +
        `dynamic policy is core's BackupWorkerPolicy with the linear gain g(k) = k and a window of 10 iterations.`,
      '',
      table(
        [
          'rule',
          'mean k',
          'iterations to target',
          'time to target (s, median)',
          'per seed (s)',
          'time / dynamic',
        ],
        tableRows,
      ),
      '',
      '![time to target](results/backup.svg)',
      '',
      '![k over time](results/backup-k.svg)',
      '',
      `**Against the claim.** The best static choice here is ${best.label} ` +
        `(${num(median(best.times), 1)} s, median); the dynamic policy takes ${num(median(dynamic.times), 1)} s: ` +
        `${ratio(speedBest)} the speed of the best static b, found without trying every b (the table needed ` +
        `${staticRows.length} × ${seeds.length} runs to find it), and ${ratio(speedAll)} against waiting for ` +
        `everyone (b = 0). ` +
        (speedBest >= 3
          ? `The predecessor paper's "up to 3× faster than the best static b" is **reproduced**.`
          : speedBest >= 1.1
            ? `It beats every static b, but the "up to 3×" is **not reproduced**. `
            : `Matching the best static b is what it achieves here; the "up to 3× faster than the best static ` +
              `b" is **not reproduced**. `) +
        (speedBest >= 3
          ? ''
          : `Why: seed 003's gain g(k) = k is a fair model here (k × iterations to target over the static ` +
            `rules: ${linearity}), so the policy picks sensible k — ${num(dynamic.meanK, 1)} on average, less while ` +
            `stragglers are present (see the trace) — but an adaptive rule can only beat the best fixed b by the ` +
            `gap between the optima of the regimes it switches between, and it lags each switch by its window of ` +
            `10 iterations. A 3× gap needs regimes whose best k differ far more than "everyone" vs "the fast half" ` +
            `with these delay distributions; the paper's setting (consensus between neighbours on a graph, each ` +
            `worker choosing its own b) is not what one cluster here simulates.`),
    ].join('\n');
    return {
      markdown,
      plots: [
        { file: 'backup.svg', svg: bars },
        { file: 'backup-k.svg', svg: kTrace },
      ],
    };
  },
};
