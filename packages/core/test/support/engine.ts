/** Test support: a round engine with fp32 proposals and majority agreement. */
import { RoundEngine } from '../../src/rounds.ts';

export type EngineOptions = ConstructorParameters<typeof RoundEngine>[0];

/** d = 64 at iteration 0 unless overridden (initial follows the dimension). */
export function fp32Engine(overrides: Partial<EngineOptions> = {}): RoundEngine {
  const dimension = overrides.dimension ?? 64;
  return new RoundEngine({
    dimension,
    jobId: 7,
    codec: 'fp32',
    blockSize: 0,
    mode: 'majority',
    epsilon: 1e-6,
    staleness: 2,
    graceMs: 100,
    initial: new Float32Array(dimension),
    iteration: 0,
    ...overrides,
  });
}
