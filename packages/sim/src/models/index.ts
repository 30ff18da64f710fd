/**
 * The scenario's model, built from its spec: softmax regression or the MLP on the MNIST split of
 * the scenario, or the synthetic quadratic.
 */
import { loadMnist } from '../data.ts';
import type { Scenario } from '../scenario.ts';
import { createMlp } from './mlp.ts';
import type { Model } from './model.ts';
import { createQuadratic } from './quadratic.ts';
import { createSoftmaxRegression } from './softmax.ts';

export function createModel(scenario: Scenario): Model {
  const m = scenario.model;
  if (m.kind === 'quadratic') return createQuadratic(m);
  const data = loadMnist(scenario.data);
  return m.kind === 'softmax' ? createSoftmaxRegression(data, m) : createMlp(data, m);
}
