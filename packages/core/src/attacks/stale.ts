/**
 * Stale: replay its own honest message of `lag` iterations earlier, stamped as new (an update
 * computed on parameters that old; it has an honest norm, direction and noise).
 *
 * Guarantee: the t-th call returns a copy of the honest message of call max(0, t − lag). Needs no
 * peers. Memory: lag + 1 messages.
 *
 * Parameters: lag ≥ 1 (default 20; the browser's fault mode uses 5).
 *
 * Paper: the staleness bound of seed 001 (../shared/seeds/async-sgd-sdde-staleness.md); caught by
 * the quarantine's lag-symmetry test (docs/architecture.md).
 */
import { messageAttack, param, type Attack, type AttackParams } from './attack.ts';

export const STALE_DEFAULT_LAG = 20;

export function createStale(params: AttackParams = {}): Attack {
  const lag = param(
    'stale',
    'lag',
    params.lag,
    STALE_DEFAULT_LAG,
    (v) => Number.isInteger(v) && v >= 1,
  );
  const history: Float32Array[] = [];
  return messageAttack('stale', ({ honest }) => {
    history.push(Float32Array.from(honest));
    if (history.length > lag + 1) history.shift();
    return Float32Array.from(history[0]!);
  });
}
