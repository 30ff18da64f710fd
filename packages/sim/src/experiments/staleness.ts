/**
 * Table 3 — seed 001 (asynchronous SGD as a stochastic delay differential equation): staleness
 * threshold S and active workers n against convergence, with the stability boundary predicted by
 * core's SDDE analysis (`analyzeStaleness`) drawn on the same axes, and where more workers stop
 * helping.
 *
 * Setup: the quadratic f(x) = ½ Σ h_i x_i² with 8 eigenvalues log-spaced in [0.1, 1], gradient
 * noise σ = 0.01, x₀ = 1. Asynchronous SGD: every worker is its own cluster; the coordinator
 * averages whatever arrived with quorum 1 and no grace, so each accepted update is applied on
 * arrival (seed 001's event-triggered SGD); a proposal whose base is more than S iterations old
 * is dropped. Task time T = 0.5 s + Exp(0.5 s) + 2 × 5 ms links; step η = 0.05; fp32 messages.
 * Prediction: for every (n, S) and every eigenvalue, the rightmost root of s + a·Ĝ(s) = 0 with
 * a = η·h·λ·p, λ = n/E[T], from the staleness sample measured in that run (the coordinator's
 * online view: timing does not depend on the loss, so the sample says nothing about divergence);
 * stable iff Re < 0 for the top eigenvalue, speed = min over eigenvalues of −Re.
 */
import { analyzeStaleness } from '@swarmgrad/core';
import { logSpectrum } from '../models/quadratic.ts';
import { heatmap, lineChart } from '../plot.ts';
import { simulate, type SimulationResult } from '../simulator.ts';
import {
  describeRun,
  num,
  table,
  verdict,
  type Experiment,
  type ExperimentContext,
  type ExperimentOutput,
} from './common.ts';

const ETA = 0.05;
const EIGENVALUES = logSpectrum(8, 0.1, 1);
const F0 = 0.5 * EIGENVALUES.reduce((a, b) => a + b, 0);
const TARGET = 1e-3 * F0;
const DECADES = Math.log(F0 / TARGET);

interface Cell {
  n: number;
  S: number;
  r: SimulationResult;
  /** First time the loss was ≤ target, Infinity if never. */
  timeToTarget: number;
  outcome: 'converged' | 'diverged' | 'slow';
  finalRatio: number;
  predictedStable: boolean;
  /** min over eigenvalues of −Re(root), per second. */
  predictedRate: number;
  acceptance: number;
  meanStaleness: number;
}

function sLabel(S: number): string {
  return S === Infinity ? '∞' : String(S);
}

export const stalenessExperiment: Experiment = {
  id: 'staleness',
  title:
    'Table 3 — staleness threshold S and workers n against convergence, with the SDDE prediction (seed 001)',
  run(ctx: ExperimentContext): ExperimentOutput {
    const workers = ctx.quick ? [1, 8, 32, 64] : [1, 2, 4, 8, 16, 24, 32, 40, 48, 64, 96];
    const thresholds = ctx.quick ? [0, 4, Infinity] : [0, 1, 2, 4, 8, 16, 32, Infinity];
    const horizon = ctx.quick ? 100 : 450;
    const cells: Cell[] = [];
    for (const n of workers) {
      for (const S of thresholds) {
        const r = simulate({
          seed: 3,
          model: { kind: 'quadratic', eigenvalues: EIGENVALUES, noise: 0.01 },
          workers: n,
          cluster: { size: 1, rebalance: false },
          codec: { name: 'fp32' },
          aggregator: { name: 'mean' },
          quarantine: { enabled: false },
          agreement: { mode: 'average', quorum: 1, grace: 0 },
          staleness: S,
          training: { learningRate: ETA, batchSize: 1 },
          timing: {
            compute: { kind: 'shifted-exponential', shift: 0.5, mean: 0.5 },
            latency: { kind: 'constant', value: 0.005 },
          },
          stop: { maxIterations: 40_000, maxTime: horizon, divergeFactor: 1e3 },
          evalEvery: 5,
        });
        const hit = r.history.find((p) => p.loss <= TARGET);
        const finalRatio = r.final.loss / F0;
        const outcome = r.diverged ? 'diverged' : r.final.loss <= TARGET ? 'converged' : 'slow';
        const sample = r.staleness.length > 0 ? r.staleness : [0];
        let stable = true;
        let rate = Infinity;
        let acceptance = 1;
        for (const h of EIGENVALUES) {
          const [point] = analyzeStaleness({
            learningRate: ETA,
            curvature: h,
            meanTaskTime: r.meanTaskTime,
            delays: () => sample,
            workerCounts: [n],
            thresholds: [S],
          });
          if (!point!.stable) stable = false;
          rate = Math.min(rate, point!.rate);
          acceptance = point!.acceptance;
        }
        const accepted = sample.filter((d) => d <= S);
        cells.push({
          n,
          S,
          r,
          timeToTarget: hit?.time ?? Infinity,
          outcome,
          finalRatio,
          predictedStable: stable,
          predictedRate: rate,
          acceptance,
          meanStaleness: accepted.length
            ? accepted.reduce((a, b) => a + b, 0) / accepted.length
            : 0,
        });
        ctx.log(
          describeRun(`  n=${n} S=${sLabel(S)} predicted ${stable ? 'stable' : 'unstable'}`, r),
        );
      }
    }
    const cell = (n: number, S: number) => cells.find((c) => c.n === n && c.S === S)!;
    const agree = cells.filter((c) => (c.outcome !== 'diverged') === c.predictedStable).length;
    const disagreements = cells.filter((c) => (c.outcome !== 'diverged') !== c.predictedStable);

    // heat map: measured time to target, boundary = predicted stability edge per n
    const values = thresholds.map((S) =>
      workers.map((n) => {
        const c = cell(n, S);
        if (c.outcome === 'diverged') return -1;
        return c.timeToTarget;
      }),
    );
    const edges = workers.map((n) => {
      let top = -1;
      thresholds.forEach((S, i) => {
        if (cell(n, S).predictedStable) top = i;
      });
      return top + 1;
    });
    const finite = cells.map((c) => c.timeToTarget).filter((t) => Number.isFinite(t) && t > 0);
    const lo = Math.log(Math.min(...finite));
    const hi = Math.log(Math.max(...finite));
    const map = heatmap({
      title:
        'Measured time to loss ≤ 10⁻³·f₀ (s); dashed: SDDE-predicted stability edge (stable below)',
      xLabel: 'active workers n',
      yLabel: 'staleness threshold S',
      xLabels: workers.map(String),
      yLabels: thresholds.map(sLabel),
      values,
      label: (v) => (v < 0 ? 'div' : Number.isFinite(v) ? v.toFixed(0) : `>${horizon}`),
      badness: (v) => (v < 0 || !Number.isFinite(v) ? 1 : (Math.log(v) - lo) / (hi - lo || 1)),
      boundary: { name: 'SDDE stability boundary', edges },
      legend:
        'div = diverged (loss > 10³·f₀); >T = not reached within the horizon; colour: log time, green fast, red slow/diverged',
      width: 820,
    });

    // speed against n: measured ln(f0/target)/(2·t) vs predicted min −Re(root), S = ∞ and best S
    const speedMeasured = (c: Cell) =>
      c.outcome === 'diverged' || !Number.isFinite(c.timeToTarget)
        ? NaN
        : DECADES / (2 * c.timeToTarget);
    const bestS = (n: number) => {
      let best: Cell | undefined;
      for (const S of thresholds) {
        const c = cell(n, S);
        if (c.outcome === 'diverged' || !Number.isFinite(c.timeToTarget)) continue;
        if (best === undefined || c.timeToTarget < best.timeToTarget) best = c;
      }
      return best;
    };
    const speed = lineChart({
      title: 'Convergence speed against active workers',
      xLabel: 'active workers n (log)',
      yLabel: 'speed (1/s, log)',
      logX: true,
      logY: true,
      series: [
        {
          name: 'measured, S = ∞',
          points: workers.map((n) => [n, speedMeasured(cell(n, Infinity))] as const),
        },
        {
          name: 'SDDE, S = ∞',
          dashed: true,
          points: workers.map((n) => [n, cell(n, Infinity).predictedRate] as const),
        },
        {
          name: 'measured, best S',
          points: workers.map((n) => {
            const b = bestS(n);
            return [n, b ? speedMeasured(b) : NaN] as const;
          }),
        },
        {
          name: 'SDDE, that S',
          dashed: true,
          points: workers.map((n) => {
            const b = bestS(n);
            return [n, b ? b.predictedRate : NaN] as const;
          }),
        },
      ],
      width: 820,
    });

    const rows = cells
      .filter((c) => c.S === Infinity || c.S === 4 || c.S === 16)
      .map((c) => [
        String(c.n),
        sLabel(c.S),
        num(c.meanStaleness, 1),
        num(c.acceptance, 2),
        c.outcome === 'diverged'
          ? 'diverged'
          : Number.isFinite(c.timeToTarget)
            ? num(c.timeToTarget, 1)
            : `> ${horizon}`,
        c.finalRatio.toExponential(1),
        c.predictedStable ? 'stable' : 'unstable',
        num(c.predictedRate, 3),
      ]);
    const inf = workers.map((n) => cell(n, Infinity));
    const fastest = inf
      .filter((c) => c.outcome !== 'diverged' && Number.isFinite(c.timeToTarget))
      .sort((a, b) => a.timeToTarget - b.timeToTarget)[0];
    const predictedBest = [...inf].sort((a, b) => b.predictedRate - a.predictedRate)[0];
    const firstDiverged = inf.find((c) => c.outcome === 'diverged');
    const largest = workers[workers.length - 1]!;
    // "more workers do not necessarily accelerate": some n below the largest reached the target
    // sooner than every larger n (which were slower, missed it or diverged)
    const moreIsNotFaster = fastest !== undefined && fastest.n < largest;
    // "small staleness does not slow convergence, large staleness diverges"
    const smallHelps = cell(8, Infinity).timeToTarget < cell(1, Infinity).timeToTarget;
    const largeDiverges = firstDiverged !== undefined;
    const firstUnstable = inf.find((c) => !c.predictedStable);
    const bestAt = (n: number) => bestS(n);
    const markdown = [
      `Quadratic with 8 eigenvalues log-spaced in [0.1, 1] (f₀ = ${num(F0, 2)}), asynchronous SGD (each update ` +
        `applied on arrival, quorum 1), η = ${ETA}, task time 0.5 s + Exp(0.5 s) + links, horizon ${horizon} s ` +
        `of simulated time. Target: loss ≤ 10⁻³·f₀. Prediction: core's \`analyzeStaleness\` on each run's measured ` +
        `staleness sample, rightmost root per eigenvalue; "stable" = every root has Re < 0, "speed" = the slowest ` +
        `mode's −Re (1/s). The heat map shows all ${cells.length} (n, S) runs; the table the columns S = 4, 16, ∞.`,
      '',
      '![time to target over (n, S) with the SDDE boundary](results/staleness-map.svg)',
      '',
      '![speed against n](results/staleness-speed.svg)',
      '',
      table(
        [
          'n',
          'S',
          'mean accepted staleness',
          'acceptance p',
          'time to target (s)',
          `loss / f₀ at end`,
          'SDDE',
          'SDDE speed (1/s)',
        ],
        rows,
      ),
      '',
      `**Against the claim.** The SDDE stability prediction matches the measured outcome (diverged or not) in ` +
        `${agree} of ${cells.length} runs` +
        (disagreements.length > 0
          ? ` (mismatches: ${disagreements
              .map(
                (c) =>
                  `n=${c.n}, S=${sLabel(c.S)}: predicted ${c.predictedStable ? 'stable' : 'unstable'}, measured ${c.outcome}`,
              )
              .join('; ')})`
          : '') +
        `. Without a threshold (S = ∞) ` +
        (firstDiverged
          ? `training diverges from n = ${firstDiverged.n} on (SDDE: unstable from n = ${firstUnstable?.n ?? '—'})`
          : `no run diverged (SDDE: unstable from n = ${firstUnstable?.n ?? '—'})`) +
        `: the mean staleness grows with n (${num(cell(8, Infinity).meanStaleness, 1)} updates at n = 8, ` +
        `${num(cell(32, Infinity).meanStaleness, 1)} at n = 32) until a·τ crosses the stability limit (π/2 ` +
        `for a fixed delay). ` +
        `More workers stop helping at n = ${fastest?.n ?? '—'} (fastest measured time to target with S = ∞, ` +
        `${fastest ? num(fastest.timeToTarget, 1) : '—'} s); the SDDE's fastest n is ${predictedBest?.n ?? '—'} — ` +
        `"increasing the number of activated workers does not necessarily accelerate" is ${verdict(moreIsNotFaster)}. ` +
        `Small staleness does not slow convergence (n = 8, S = ∞: mean staleness ` +
        `${num(cell(8, Infinity).meanStaleness, 1)}, ${num(cell(8, Infinity).timeToTarget, 1)} s vs ` +
        `${num(cell(1, Infinity).timeToTarget, 1)} s for n = 1, i.e. a ` +
        `${num(cell(1, Infinity).timeToTarget / cell(8, Infinity).timeToTarget, 1)}× speed-up for 8×), large staleness ` +
        `diverges — ${verdict(smallHelps && largeDiverges)}. A threshold restores stability at large n ` +
        `(n = ${largest}: best S = ${bestAt(largest) ? sLabel(bestAt(largest)!.S) : '—'}, ` +
        `${bestAt(largest) ? num(bestAt(largest)!.timeToTarget, 1) : '—'} s). Limits: the SDDE is a fluid ` +
        `(Poisson) approximation of the discrete recursion; its speed is an asymptotic rate, so it ranks ` +
        `configurations rather than predicting seconds (compare the dashed and solid lines), and near the ` +
        `boundary a run can reach the target before a slow instability grows.`,
    ].join('\n');
    return {
      markdown,
      plots: [
        { file: 'staleness-map.svg', svg: map },
        { file: 'staleness-speed.svg', svg: speed },
      ],
    };
  },
};
