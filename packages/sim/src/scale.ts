/**
 * The scale scenario of the issue: 10,000 virtual workers training softmax regression with the
 * product's settings (one-bit + error feedback messages and proposals, staleness threshold 2,
 * clusters of 8), one example per worker per iteration, no attackers and no churn (so the rounds'
 * content may run in worker threads). `mode` picks the agreement between the 1,250 clusters:
 * 'majority' (the default for any job) or 'average' (DESIGN step 5's mode for strongly convex
 * jobs; with the small L2 term set here softmax regression is one). Used by bench/sim.ts (wall
 * time of 100 iterations), by the test of its correctness and by the "agreement at scale" table
 * (experiments/agreement-scale.ts), which sets `options` to compare the majority estimators.
 */
import type { AgreementEstimator } from '@swarmgrad/core';
import type { ScenarioInput } from './scenario.ts';

export interface ScaleOptions {
  /** 'majority' mode: core RoundEngine's estimator, trim and clip (undefined: the product's). */
  estimator?: AgreementEstimator | undefined;
  trim?: number | undefined;
  trimFloor?: number | undefined;
  clip?: number | undefined;
  /** L2 term of the model; default 1e-4 in 'average' mode, 0 in 'majority' mode. */
  l2?: number | undefined;
}

export function scaleScenario(
  iterations: number,
  workers = 10_000,
  mode: 'majority' | 'average' = 'majority',
  options: ScaleOptions = {},
): ScenarioInput {
  const { estimator, trim, trimFloor, clip } = options;
  return {
    seed: 10,
    model: { kind: 'softmax', l2: options.l2 ?? (mode === 'average' ? 1e-4 : 0) },
    workers,
    cluster: { size: 8, rebalance: false },
    training: { learningRate: 0.5, batchSize: 1 },
    aggregator: { name: 'mean' },
    agreement: mode === 'majority' ? { mode, estimator, trim, trimFloor, clip } : { mode },
    quarantine: { enabled: false },
    stop: { maxIterations: iterations },
    evalEvery: Math.max(1, Math.floor(iterations / 4)),
  };
}
