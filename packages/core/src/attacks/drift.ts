/**
 * Drift — a time-coupled attack: each iteration the attacker sends its honest message plus a
 * small bias, −c·σ_j·sign(m_j) per coordinate, where σ is the honest spread and m a momentum of the
 * honest mean over past iterations. One round's bias hides inside the honest noise (like ALIE), but
 * it always pushes against the same long-run direction, so the model integrates it over the
 * iterations while memoryless filters judge each round on its own.
 *
 * Guarantee: |out_j − honest_j| = c·s_j with s_j the honest pool's per-coordinate std (when the
 * pool holds ≥ 2 inputs) or the std of the attacker's own honest messages so far (an exponential
 * moving estimate, without peers); the bias points against sign(m), m ← β·m + μ (μ the pool mean),
 * the same way every iteration once m settles (0 bias where m_j = 0).
 *
 * Parameters: strength c > 0 (default 1), momentum β ∈ [0, 1) (default 0.9).
 *
 * Paper: Karimireddy, He, Jaggi, "Learning from history for Byzantine robust optimization",
 * ICML 2021 (time-coupled attacks defeat memoryless aggregators; centered clipping with momentum
 * is their defence).
 */
import {
  honestPool,
  messageAttack,
  param,
  poolStatistics,
  type Attack,
  type AttackParams,
} from './attack.ts';

export const DRIFT_DEFAULT_C = 1;
export const DRIFT_DEFAULT_MOMENTUM = 0.9;

export function createDrift(params: AttackParams = {}): Attack {
  const c = param('drift', 'strength', params.strength, DRIFT_DEFAULT_C, (v) => v > 0);
  const beta = param(
    'drift',
    'momentum',
    params.momentum,
    DRIFT_DEFAULT_MOMENTUM,
    (v) => v >= 0 && v < 1,
  );
  let m: Float64Array | undefined;
  // without peers: running mean and variance of its own honest messages
  let ownMean: Float64Array | undefined;
  let ownVar: Float64Array | undefined;
  return messageAttack('drift', (input) => {
    const { honest } = input;
    const d = honest.length;
    const pool = honestPool(input);
    const { mean, std } = poolStatistics(pool);
    if (m?.length !== d) m = new Float64Array(d);
    for (let j = 0; j < d; j++) m[j] = beta * m[j]! + mean[j]!;
    if (ownMean?.length !== d || ownVar?.length !== d) {
      ownMean = Float64Array.from(honest);
      ownVar = new Float64Array(d);
    } else {
      for (let j = 0; j < d; j++) {
        const e = honest[j]! - ownMean[j]!;
        ownMean[j]! += 0.1 * e;
        ownVar[j] = 0.9 * (ownVar[j]! + 0.1 * e * e);
      }
    }
    const out = new Float32Array(d);
    for (let j = 0; j < d; j++) {
      const s = pool.length >= 2 ? std[j]! : Math.sqrt(ownVar[j]!);
      out[j] = honest[j]! - c * s * Math.sign(m[j]!);
    }
    return out;
  });
}
