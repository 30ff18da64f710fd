/**
 * Table 5 — Byzantine filters (seed 002's related work: SafeguardSGD, CGE, LICM-SGD): every
 * registered aggregator of packages/core × every attack of attacks.ts, with 1 to 4 attackers
 * among 10 workers; final accuracy. Two extra rows run the SafeguardSGD-style quarantine
 * (core's Quarantine) on top of the mean and of CGE.
 *
 * Setup: softmax regression on MNIST, one cluster of 10 workers (the filter is the only defence:
 * there is no majority of clusters to lean on), fp32 messages so the filters see the attacks as
 * sent, every round waits for all 10, f = number of attackers (the rules that take f are told
 * the truth), 100 iterations, batch 16, η = 0.5.
 */
import { aggregatorNames, type AggregatorName } from '@swarmgrad/core';
import { attackNames, type AttackName } from '../attacks.ts';
import { heatmap } from '../plot.ts';
import { simulate, type SimulationResult } from '../simulator.ts';
import {
  describeRun,
  pct,
  table,
  type Experiment,
  type ExperimentContext,
  type ExperimentOutput,
} from './common.ts';

interface Rule {
  label: string;
  aggregator: AggregatorName;
  quarantine: boolean;
  /** Report the rule's filtered inputs to the quarantine (default wiring) or not. */
  reportFiltered: boolean;
}

const rules: Rule[] = [
  ...aggregatorNames.map((a) => ({
    label: a,
    aggregator: a,
    quarantine: false,
    reportFiltered: true,
  })),
  { label: 'mean + quarantine', aggregator: 'mean', quarantine: true, reportFiltered: true },
  { label: 'cge + quarantine', aggregator: 'cge', quarantine: true, reportFiltered: true },
  {
    label: 'cge + quarantine (distance test only)',
    aggregator: 'cge',
    quarantine: true,
    reportFiltered: false,
  },
];

interface Cell {
  rule: Rule;
  attack: AttackName | 'none';
  attackers: number;
  r: SimulationResult;
}

export const byzantineExperiment: Experiment = {
  id: 'byzantine',
  title: 'Table 5 — every aggregator × every attack, 1–4 attackers of 10 (seed 002, related work)',
  run(ctx: ExperimentContext): ExperimentOutput {
    const iterations = ctx.quick ? 15 : 100;
    const counts = ctx.quick ? [2] : [1, 2, 3, 4];
    const cells: Cell[] = [];
    const run = (rule: Rule, attack: AttackName | 'none', attackers: number): SimulationResult =>
      simulate({
        seed: 7,
        workers: 10,
        cluster: { size: 10, rebalance: false },
        codec: { name: 'fp32' },
        aggregator: { name: rule.aggregator, f: attackers },
        quarantine: {
          enabled: rule.quarantine,
          window: 5,
          threshold: 3,
          strikes: 2,
          reportFiltered: rule.reportFiltered,
        },
        byzantine: {
          count: attack === 'none' ? 0 : attackers,
          attack: attack === 'none' ? 'sign-flip' : attack,
          placement: 'first',
        },
        backup: { kind: 'static', backups: 0 },
        training: { learningRate: 0.5, batchSize: 16 },
        stop: { maxIterations: iterations },
        evalEvery: iterations,
      });
    for (const rule of rules) {
      const r = run(rule, 'none', 0);
      cells.push({ rule, attack: 'none', attackers: 0, r });
      ctx.log(describeRun(`  ${rule.label} no attack`, r));
      for (const attack of attackNames) {
        for (const k of counts) {
          const rk = run(rule, attack, k);
          cells.push({ rule, attack, attackers: k, r: rk });
        }
        ctx.log(
          `  ${rule.label} × ${attack}: ` +
            counts
              .map((k) =>
                cells.find((c) => c.rule === rule && c.attack === attack && c.attackers === k)!,
              )
              .map((c) => `${c.attackers}→${pct(c.r.final.accuracy, 0)}`)
              .join(' '),
        );
      }
    }
    const acc = (rule: Rule, attack: AttackName | 'none', k: number) => {
      const c = cells.find((x) => x.rule === rule && x.attack === attack && x.attackers === k)!;
      return c.r.final.accuracy;
    };
    const label = (rule: Rule, attack: AttackName, k: number) => {
      const c = cells.find((x) => x.rule === rule && x.attack === attack && x.attackers === k)!;
      const a = pct(c.r.final.accuracy, 0);
      return c.r.diverged ? `${a} (div)` : a;
    };
    const worst = counts[counts.length - 1]!;
    const sections: string[] = [];
    for (const k of counts) {
      sections.push(
        `**${k} attacker${k > 1 ? 's' : ''} of 10** (f = ${k}; final accuracy after ${iterations} iterations; ` +
          `no attack: first column)`,
        '',
        table(
          ['rule', 'no attack', ...attackNames],
          rules.map((rule) => [
            rule.label,
            pct(acc(rule, 'none', 0), 0),
            ...attackNames.map((a) => label(rule, a, k)),
          ]),
        ),
        '',
      );
    }
    const map = heatmap({
      title: `Final accuracy with ${worst} attackers of 10`,
      xLabel: 'attack',
      yLabel: '',
      xLabels: ['none', ...attackNames],
      yLabels: [...rules].reverse().map((r) => r.label),
      values: [...rules]
        .reverse()
        .map((rule) => [acc(rule, 'none', 0), ...attackNames.map((a) => acc(rule, a, worst))]),
      label: (v) => pct(v, 0),
      badness: (v) => Math.min(1, Math.max(0, (0.9 - v) / 0.8)),
      width: 860,
      height: 460,
    });
    // worst case over the attacks, per rule and number of attackers
    const worstOf = (rule: Rule, k: number) => {
      let worst: { attack: AttackName; accuracy: number } | undefined;
      for (const a of attackNames) {
        const v = acc(rule, a, k);
        if (worst === undefined || v < worst.accuracy) worst = { attack: a, accuracy: v };
      }
      return worst!;
    };
    const worstRows = rules.map((rule) => [
      rule.label,
      pct(acc(rule, 'none', 0), 0),
      ...counts.map((k) => {
        const w = worstOf(rule, k);
        return `${pct(w.accuracy, 0)} (${w.attack})`;
      }),
    ]);
    const caughtOf = (rule: Rule, attack: AttackName, k: number) => {
      const c = cells.find((x) => x.rule === rule && x.attack === attack && x.attackers === k)!;
      return {
        caught: c.r.byzantine.filter((id) => c.r.quarantined.includes(id)).length,
        honest: c.r.quarantined.filter((id) => !c.r.byzantine.includes(id)).length,
      };
    };
    const qRules = rules.filter((r) => r.quarantine);
    const qRows = qRules.flatMap((rule) =>
      attackNames.map((a) => [
        rule.label,
        a,
        ...counts.map((k) => {
          const q = caughtOf(rule, a, k);
          return `${q.caught}/${k}${q.honest > 0 ? ` (+${q.honest} honest)` : ''}`;
        }),
      ]),
    );
    const robust = (rule: Rule, k: number) =>
      attackNames.every((a) => acc(rule, a, k) >= acc(rule, 'none', 0) - 0.02);
    const robustList = counts.map(
      (k) =>
        `${k}: ${
          rules
            .filter((r) => robust(r, k))
            .map((r) => r.label)
            .join(', ') || 'none'
        }`,
    );
    const byLabel = (label: string) => rules.find((r) => r.label === label)!;
    const mean = byLabel('mean');
    const krum = byLabel('krum');
    const cge = byLabel('cge');
    const median = byLabel('median');
    const meanQ = byLabel('mean + quarantine');
    const cgeQ = byLabel('cge + quarantine');
    const cgeD = byLabel('cge + quarantine (distance test only)');
    const first = counts[0]!;
    const honestBans = (rule: Rule) =>
      Math.max(...attackNames.flatMap((a) => counts.map((k) => caughtOf(rule, a, k).honest)));
    const plain = rules.filter((r) => !r.quarantine);
    const meanWorst = (rule: Rule) =>
      counts.reduce((sum, k) => sum + worstOf(rule, k).accuracy, 0) / counts.length;
    const mostRobust = [...plain].sort((a, b) => meanWorst(b) - meanWorst(a))[0]!;
    const alwaysCaught = attackNames.filter((a) =>
      counts.every((k) => caughtOf(meanQ, a, k).caught === k),
    );
    const missed = attackNames.filter((a) => !alwaysCaught.includes(a));
    const missedText = missed
      .map((a) => {
        const caught = counts.map((k) => `${caughtOf(meanQ, a, k).caught}/${k}`).join(', ');
        return `${a} (${caught})`;
      })
      .join('; ');
    const cgeDWorst = counts.map((k) => pct(worstOf(cgeD, k).accuracy, 0)).join(' / ');
    const cgeQWorst = counts.map((k) => pct(worstOf(cgeQ, k).accuracy, 0)).join(' / ');
    const range = (rule: Rule, attack: AttackName) =>
      counts.map((k) => pct(acc(rule, attack, k), 0)).join(' / ');
    const markdown = [
      `Softmax regression, one cluster of 10 workers, fp32 messages, every round waits for all 10, ` +
        `${iterations} iterations, η = 0.5, batch 16; attackers are workers 0..k−1 and the rules that take f ` +
        `get f = k. Attacks (attacks.ts): sign-flip = −4·u, scale = 100·u, label-flip = honest gradient on labels ` +
        `9 − y, zero, random = Gaussian of 10× the honest norm, nan = a well-formed frame carrying a NaN, stale = ` +
        `the attacker's own update from 20 rounds earlier. With 4 attackers, trimmed mean (n ≤ 2f), Krum and ` +
        `Multi-Krum (n ≤ 2f + 2) fall back to the coordinate median, so their rows equal the median's. ` +
        `"(div)" marks a run stopped because the loss diverged. Quarantine (core's SafeguardSGD-style ` +
        `concentration filter): window 5 iterations, threshold 3× the median distance, 2 strikes; "distance ` +
        `test only" does not report the rule's filtered inputs to it.`,
      '',
      ...sections,
      `![accuracy heat map, ${worst} attackers](results/byzantine.svg)`,
      '',
      'Worst case over the seven attacks (accuracy, and the attack that achieved it):',
      '',
      table(
        ['rule', 'no attack', ...counts.map((k) => `${k} attacker${k > 1 ? 's' : ''}`)],
        worstRows,
      ),
      '',
      'Attackers quarantined (caught / attackers; honest workers wrongly banned in parentheses):',
      '',
      table(['rule', 'attack', ...counts.map((k) => `${k} attacker${k > 1 ? 's' : ''}`)], qRows),
      '',
      `Rules within 2 points of their clean accuracy under every attack, by number of attackers — ${robustList.join('; ')}.`,
      '',
      `**Against SafeguardSGD's reported table.** The seed gives SafeguardSGD's abstract only; the paper's ` +
        `experiment table (deep networks on CIFAR-10) is not in this repository and we could not retrieve its ` +
        `numbers, so there is nothing to set ours beside number for number — we do **not** claim a side-by-side ` +
        `comparison, only check what the abstracts state. ` +
        `(1) The mean has no defence: sign-flip takes it to ${range(mean, 'sign-flip')} for ${counts.join(' / ')} ` +
        `attackers, label-flip to ${range(mean, 'label-flip')}. ` +
        `(2) CGE "comparable to existing gradient-filters": its worst case is ` +
        `${counts.map((k) => pct(worstOf(cge, k).accuracy, 0)).join(' / ')} against the median's ` +
        `${counts.map((k) => pct(worstOf(median, k).accuracy, 0)).join(' / ')} — **reproduced**; over all ` +
        `counts the rule with the best worst case is ${mostRobust.label}. ` +
        `(3) Coordinate-wise median (LICM-SGD's family) needs no f and degrades gracefully up to 4 of 10, but ` +
        `pays ${(100 * (acc(cge, 'none', 0) - acc(median, 'none', 0))).toFixed(0)} points of clean accuracy. ` +
        `(4) Krum picks the single most central input: ${first} zero attacker${first > 1 ? 's' : ''} ` +
        `already ${acc(krum, 'zero', first) < 0.2 ? `${first > 1 ? 'stop' : 'stops'} training entirely` : `${first > 1 ? 'cost' : 'costs'} accuracy`} ` +
        `(${pct(acc(krum, 'zero', first), 0)}) — when gradient noise exceeds the signal, the zero vector is ` +
        `closer to the honest inputs than they are to each other (with ${worst} attackers Krum falls back to ` +
        `the median and escapes: ${pct(acc(krum, 'zero', worst), 0)}). ` +
        `(5) NaN frames never reach a rule (the door rejects them); what remains is each rule dropping f honest ` +
        `inputs in their place. ` +
        `(6) SafeguardSGD's idea — watch each worker's accumulated updates over a window and ban the ones that ` +
        `drift — lifts the mean under sign-flip from ${range(mean, 'sign-flip')} to ` +
        `${range(meanQ, 'sign-flip')}; on top of the mean it caught every attacker of ` +
        `${alwaysCaught.join(', ') || 'no attack'} and not all of ${missedText || 'none'} — attackers whose ` +
        `updates stay close to honest ones escape a distance test — and banning cannot undo what scale ` +
        `attackers did before their second strike (mean + quarantine under scale: ${range(meanQ, 'scale')}). ` +
        `Wired as DESIGN.md says ("tabs that keep failing the filter are quarantined"), CGE's filtered reports ` +
        `banned up to ${honestBans(cgeQ)} honest workers in a run (worst cases ${cgeQWorst}): CGE always drops ` +
        `f inputs, so once the attackers are banned it keeps filtering the largest-norm honest workers, which ` +
        `then fail the filtered-share test in turn. With the distance test only, ` +
        `${honestBans(cgeD) === 0 ? 'no honest worker was banned' : `at most ${honestBans(cgeD)} honest workers were banned`} ` +
        `(worst cases ${cgeDWorst}) — the filtered-share rule should not be fed by a rule that always ` +
        `filters f.`,
    ].join('\n');
    return { markdown, plots: [{ file: 'byzantine.svg', svg: map }] };
  },
};
