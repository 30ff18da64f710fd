/**
 * Table 7 — the default job's in-cluster rule, measured at the product's own settings (issue 13,
 * item 2): an MLP (784-32-10; the default job's is 784-128-10), clusters of 4 with one redundant partition per tab
 * (`mean` decodes the cyclic gradient code; the robust rules take each tab's own message, which
 * averages its two partitions' updates: simulated as one partition with twice the batch), one-bit
 * messages, η = 0.1, batch 64 — where Table 5 uses one cluster of
 * 10 with fp32 messages, the setting of the papers.
 *
 * Two measurements, every number computed here:
 * - the no-attack cost against `mean` (the gradient code decoded exactly), averaged over seeds;
 * - the worst case over every register attack of core's library with one attacker in each
 *   cluster of 4 (2 of 8 tabs, f = 1), the tab's quarantine on (as a tab runs it), counting the
 *   honest tabs it banned.
 * The recommended default is the rule, among those within 1 point of the mean's clean accuracy
 * that banned no honest tab, with the best worst case.
 */
import { attackNames, type AggregatorName, type AttackName } from '@swarmgrad/core';
import { simulate, type SimulationResult } from '../simulator.ts';
import {
  pct,
  table,
  type Experiment,
  type ExperimentContext,
  type ExperimentOutput,
} from './common.ts';

const candidates: readonly AggregatorName[] = [
  'mean',
  'cge',
  'multi-krum',
  'centered-clipping',
  'bucketing',
  'trimmed-mean',
  'median',
];

export const defaultRuleExperiment: Experiment = {
  id: 'default-rule',
  title: "Table 7 — the default job's in-cluster rule at the product's settings (issue 13)",
  run(ctx: ExperimentContext): ExperimentOutput {
    const iterations = ctx.quick ? 10 : 100;
    const seeds = ctx.quick ? [1] : [1, 2, 3];
    const run = (
      rule: AggregatorName,
      seed: number,
      attack: AttackName | 'none',
      quarantine: boolean,
    ): SimulationResult =>
      simulate({
        seed,
        workers: 8,
        model: { kind: 'mlp', hidden: 32 },
        // mean decodes the cyclic code over 2 partitions per tab; a robust rule takes each tab's
        // own message, which in the product averages its 2 partitions' updates (worker.ts
        // robustMessage): here one partition with twice the batch
        cluster: { size: 4, redundancy: rule === 'mean' ? 1 : 0, rebalance: false },
        codec: { name: 'one-bit', blockSize: 1024 },
        aggregator: { name: rule, f: rule === 'mean' ? 0 : 1 },
        quarantine: {
          enabled: quarantine,
          window: 10,
          threshold: 3,
          strikes: 3,
          alignment: true,
          lagSymmetry: true,
        },
        byzantine: {
          count: attack === 'none' ? 0 : 2,
          attack: attack === 'none' ? 'sign-flip' : attack,
          placement: 'spread',
        },
        training: { learningRate: 0.1, batchSize: rule === 'mean' ? 64 : 128 },
        stop: { maxIterations: iterations },
        evalEvery: iterations,
      });

    const clean = new Map<AggregatorName, number>();
    for (const rule of candidates) {
      const accuracies = seeds.map((seed) => run(rule, seed, 'none', false).final.accuracy);
      clean.set(rule, accuracies.reduce((a, b) => a + b, 0) / accuracies.length);
      ctx.log(`  ${rule} clean: ${accuracies.map((a) => pct(a)).join(' ')}`);
    }
    const meanClean = clean.get('mean')!;
    const affordable = candidates.filter(
      (rule) => rule !== 'mean' && clean.get(rule)! >= meanClean - 0.01,
    );

    interface Worst {
      accuracy: number;
      attack: AttackName;
      honestBanned: number;
      attackersCaught: number;
      runs: number;
    }
    const worst = new Map<AggregatorName, Worst>();
    for (const rule of ['mean', ...affordable] as AggregatorName[]) {
      let w: Worst | undefined;
      let honestBanned = 0;
      let caught = 0;
      for (const attack of attackNames) {
        const r = run(rule, seeds[0]!, attack, true);
        honestBanned += r.quarantined.filter((id) => !r.byzantine.includes(id)).length;
        caught += r.byzantine.filter((id) => r.quarantined.includes(id)).length;
        if (w === undefined || r.final.accuracy < w.accuracy) {
          w = { accuracy: r.final.accuracy, attack, honestBanned: 0, attackersCaught: 0, runs: 0 };
        }
      }
      worst.set(rule, { ...w!, honestBanned, attackersCaught: caught, runs: attackNames.length });
      ctx.log(`  ${rule} worst: ${pct(w!.accuracy)} (${w!.attack}), honest banned ${honestBanned}`);
    }

    const eligible = affordable.filter((rule) => worst.get(rule)!.honestBanned === 0);
    const best = [...eligible].sort((a, b) => worst.get(b)!.accuracy - worst.get(a)!.accuracy)[0];

    const rows = candidates.map((rule) => {
      const w = worst.get(rule);
      return [
        rule,
        pct(clean.get(rule)!),
        `${((clean.get(rule)! - meanClean) * 100).toFixed(1)}`,
        w === undefined ? 'not run (clean cost > 1 point)' : `${pct(w.accuracy)} (${w.attack})`,
        w === undefined ? '–' : String(w.honestBanned),
        w === undefined ? '–' : `${w.attackersCaught}/${2 * w.runs}`,
      ];
    });
    const markdown = [
      `MLP 784-32-10 (the \`mlp-784-32-10\` preset; the default job's 784-128-10 costs 4× the simulation time) on the mnist package's digits, 8 tabs in 2 clusters of 4, one redundant partition per tab (\`mean\` decodes the cyclic gradient code; a robust rule takes each tab's own message, the mean of its two partitions' updates, simulated as one partition with batch 128), one-bit messages (blocks of 1024), η = 0.1, batch 64, ${iterations} iterations; majority agreement. Clean accuracy: mean of seeds ${seeds.join(', ')}. Attacks: every register attack of core's library with 2 attackers of 8 spread over the clusters (one in each cluster of 4, f = 1), seed ${seeds[0]}, the tab's quarantine on (window 10, threshold 3, 3 strikes, alignment and lag-symmetry tests).`,
      '',
      table(
        [
          'rule',
          'clean',
          'points vs mean',
          'worst case, 1 attacker per cluster',
          'honest quarantined',
          'attackers caught',
        ],
        rows,
      ),
      '',
      best === undefined
        ? `**Recommended default.** No rule is within 1 point of the mean's clean accuracy (${pct(meanClean)}) without banning an honest tab: the default stays \`mean\`.`
        : `**Recommended default.** Among the rules within 1 point of the mean's clean accuracy (${pct(meanClean)}) that banned no honest tab (${eligible.join(', ')}), the best worst case is **${best}**: clean ${pct(clean.get(best)!)} (${((clean.get(best)! - meanClean) * 100).toFixed(1)} points against the mean), worst ${pct(worst.get(best)!.accuracy)} (${worst.get(best)!.attack}) where the mean falls to ${pct(worst.get('mean')!.accuracy)} (${worst.get('mean')!.attack}).`,
    ].join('\n');
    return { markdown, plots: [] };
  },
};
