/**
 * Table 2 — seed 002 (Parle): local work with an elastic pull, L ∈ {1, 5, 25} local steps per
 * agreement round, against data-parallel SGD (one step per round); iterations and simulated time
 * to a target accuracy. The paper claims 2–4× faster convergence than data-parallel SGD.
 *
 * Setup: the MLP 784-32-10 on MNIST, 16 workers in 4 clusters of 4, mean inside clusters,
 * majority agreement between them. Two links: fp32 messages over 1 MB/s uplinks (the paper's
 * full-precision setting, communication-bound) and one-bit + EF messages (the product default,
 * communication ~30× cheaper). Each variant gets its best learning rate from a small grid.
 */
import { lineChart } from '../plot.ts';
import { simulate, type SimulationResult } from '../simulator.ts';
import type { ScenarioInput } from '../scenario.ts';
import {
  bytes,
  describeRun,
  firstReaching,
  pct,
  ratio,
  table,
  type Experiment,
  type ExperimentContext,
  type ExperimentOutput,
} from './common.ts';

interface Variant {
  label: string;
  mode: 'sgd' | 'elastic-sgd';
  steps: number;
}

const variants: Variant[] = [
  { label: 'data-parallel SGD', mode: 'sgd', steps: 1 },
  { label: 'Parle L=1', mode: 'elastic-sgd', steps: 1 },
  { label: 'Parle L=5', mode: 'elastic-sgd', steps: 5 },
  { label: 'Parle L=25', mode: 'elastic-sgd', steps: 25 },
];

const TARGET = 0.9;
const ELASTIC = 0.1;

interface Outcome {
  v: Variant;
  link: string;
  lr: number;
  r: SimulationResult;
  /** Simulated seconds to the target (Infinity if not reached). */
  time: number;
  iterations: number;
}

export const parleExperiment: Experiment = {
  id: 'parle',
  title: 'Table 2 — Parle (L local steps, elastic pull) against data-parallel SGD (seed 002)',
  run(ctx: ExperimentContext): ExperimentOutput {
    const rates = ctx.quick ? [0.5] : [0.2, 0.5];
    const links = [
      { label: 'fp32, 1 MB/s', codec: 'fp32' as const },
      { label: 'one-bit + EF, 1 MB/s', codec: 'one-bit' as const },
    ];
    const best: Outcome[] = [];
    for (const link of links) {
      for (const v of variants) {
        let chosen: Outcome | undefined;
        for (const lr of rates) {
          const scenario: ScenarioInput = {
            seed: 2,
            model: { kind: 'mlp', hidden: 32 },
            workers: 16,
            cluster: { size: 4, rebalance: false },
            codec: { name: link.codec },
            aggregator: { name: 'mean' },
            quarantine: { enabled: false },
            training: {
              learningRate: lr,
              batchSize: 16,
              localSteps: v.steps,
              mode: v.mode,
              elastic: v.mode === 'sgd' ? 0 : ELASTIC,
            },
            agreement: { grace: 0.05 },
            data: { evalLimit: 1000 },
            stop: {
              maxIterations: ctx.quick ? 20 : Math.ceil(600 / v.steps) + 10,
              targetAccuracy: TARGET,
            },
            evalEvery: v.steps >= 5 ? 1 : 5,
          };
          const r = simulate(scenario);
          ctx.log(describeRun(`  ${link.label} ${v.label} lr=${lr}`, r));
          const hit = firstReaching(r.history, TARGET);
          const o: Outcome = {
            v,
            link: link.label,
            lr,
            r,
            time: hit?.time ?? Infinity,
            iterations: hit?.iteration ?? Infinity,
          };
          if (
            chosen === undefined ||
            o.time < chosen.time ||
            (o.time === chosen.time && o.r.final.accuracy > chosen.r.final.accuracy)
          ) {
            chosen = o;
          }
        }
        best.push(chosen!);
      }
    }
    const rows = best.map((o) => {
      const sgd = best.find((b) => b.link === o.link && b.v.mode === 'sgd')!;
      const hit = firstReaching(o.r.history, TARGET);
      return [
        o.link,
        o.v.label,
        String(o.lr),
        Number.isFinite(o.iterations) ? String(o.iterations) : `> ${o.r.final.iteration}`,
        Number.isFinite(o.time) ? o.time.toFixed(1) : '—',
        Number.isFinite(o.iterations) ? String(o.iterations * o.v.steps) : '—',
        hit ? bytes(hit.bytesSent) : '—',
        ratio(sgd.time / o.time),
        ratio(sgd.iterations / o.iterations),
      ];
    });
    const plots = links.map((link, li) => ({
      file: `parle-${li === 0 ? 'fp32' : 'one-bit'}.svg`,
      svg: lineChart({
        title: `Accuracy against simulated time (${link.label}, best learning rate each)`,
        xLabel: 'simulated time (s)',
        yLabel: 'held-out accuracy (1,000 test digits)',
        series: best
          .filter((o) => o.link === link.label)
          .map((o) => ({
            name: `${o.v.label} (η=${o.lr})`,
            points: o.r.history.map((p) => [p.time, p.accuracy] as const),
          })),
        yMin: 0.5,
        yMax: 0.95,
        hLines: [{ y: TARGET, label: `target ${pct(TARGET, 0)}` }],
      }),
    }));
    const speed = (link: string, steps: number) => {
      const sgd = best.find((b) => b.link === link && b.v.mode === 'sgd')!;
      const p = best.find((b) => b.link === link && b.v.mode !== 'sgd' && b.v.steps === steps)!;
      return sgd.time / p.time;
    };
    const stepsRatio = (link: string) => {
      const sgd = best.find((b) => b.link === link && b.v.mode === 'sgd')!;
      const ratios = best
        .filter((b) => b.link === link && b.v.steps > 1 && Number.isFinite(b.iterations))
        .map((b) => (b.iterations * b.v.steps) / sgd.iterations);
      return ratios.length === 0
        ? '—'
        : `${Math.min(...ratios).toFixed(1)}–${Math.max(...ratios).toFixed(1)}×`;
    };
    const fpBest = Math.max(speed(links[0]!.label, 5), speed(links[0]!.label, 25));
    const obBest = Math.max(speed(links[1]!.label, 5), speed(links[1]!.label, 25));
    const verdict = (x: number) =>
      !Number.isFinite(x)
        ? 'not measurable (a run missed the target)'
        : x >= 2 && x <= 4
          ? `within the paper's 2–4× (**reproduced**)`
          : x > 4
            ? `above the paper's 2–4× (**reproduced, and more**)`
            : x >= 1
              ? `below the paper's 2–4× (**not reproduced** in size)`
              : 'slower than SGD (**not reproduced**)';
    const markdown = [
      `MLP 784-32-10 on MNIST (non-convex, d = 25,450), 16 workers in 4 clusters of 4, mean inside clusters, ` +
        `majority agreement between clusters, compute per local step 0.05 s + Exp(0.02 s), link latency ` +
        `log-normal (median 30 ms), uplink 1 MB/s. "Parle L" = core's runLocalSteps in 'elastic-sgd' mode ` +
        `(L SGD steps from the agreed x̃ with elastic pull γ = ${ELASTIC}, update u = x − x̃); data-parallel SGD = one ` +
        `step per round (L = 1, γ = 0). Parle L=1 is the same computation as SGD (the elastic term vanishes at x = x̃), ` +
        `listed to show it. Target: ${pct(TARGET, 0)} on 1,000 held-out digits; best learning rate of ` +
        `{${rates.join(', ')}} per variant; iterations = agreement rounds.`,
      '',
      table(
        [
          'link',
          'variant',
          'η',
          'rounds to target',
          'sim. time to target (s)',
          'local steps / worker',
          'bytes to target',
          'speed-up (time)',
          'fewer rounds',
        ],
        rows,
      ),
      '',
      ...plots.flatMap((p) => [`![${p.file}](results/${p.file})`, '']),
      '',
      `**Against the claim.** With full-precision messages over 1 MB/s links the best Parle variant reaches ` +
        `${pct(TARGET, 0)} ${ratio(fpBest)} faster in simulated time than data-parallel SGD: ${verdict(fpBest)}. ` +
        `With one-bit messages communication is ~30× cheaper and the gain is ${ratio(obBest)}: ${verdict(obBest)}. ` +
        `The gain comes from communicating once per L steps, not from better steps: Parle needs ` +
        `${stepsRatio(links[0]!.label)} the local steps per worker that SGD needs (column "local steps / ` +
        `worker"), so its advantage grows with the cost of a round relative to a step and vanishes when ` +
        `communication is cheap. Not reproduced: the paper's second claim, ` +
        `better generalisation from flat minima (error rates on CIFAR-10/100), needs deep networks and Entropy-SGD's ` +
        `inner Langevin loop; this MLP on 8,000 digits cannot show it, and the rows above use the elastic-SGD ` +
        `local step the product runs, not Entropy-SGD (core's 'entropy-sgd' mode exists but is not measured here).`,
    ].join('\n');
    return { markdown, plots };
  },
};
