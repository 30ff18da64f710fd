/**
 * What a tab writes to its cluster's register for one iteration, from the updates u_j of the
 * local partitions it holds (trainer: L local steps each; the simulator: the same from its
 * models). The one definition the browser/Node worker and the simulator both use.
 *
 * Guarantee, per the cluster's aggregation mode (cluster-round.ts):
 * - coded: Σ_j B[slot][j] · u_j, so the gradient code's decoder recovers (1/m) · Σ_j u_j exactly
 *   from any m − s registers (Tandon et al. 2017, seed 004);
 * - robust: (1/(s+1)) · Σ_j u_j, the tab's own estimate of one partition's update, which the
 *   robust rule compares across members (seed 002).
 * Both accumulate in float64 per coordinate.
 *
 * Parameters: the coefficients B[slot][j] of the partitions held (coded), the updates.
 */

/** Coded register message Σ_j coefficient_j · u_j (float64 accumulation). */
export function codedMessage(
  partitions: readonly { coefficient: number }[],
  updates: readonly Float32Array[],
): Float32Array {
  const d = updates[0]?.length ?? 0;
  const out = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    let sum = 0;
    for (let j = 0; j < updates.length; j++) sum += partitions[j]!.coefficient * updates[j]![i]!;
    out[i] = sum;
  }
  return out;
}

/** Robust register message: the mean (1/(s+1)) · Σ_j u_j of the tab's partition updates. */
export function robustMessage(updates: readonly Float32Array[]): Float32Array {
  const d = updates[0]?.length ?? 0;
  const out = new Float32Array(d);
  if (updates.length === 0) return out;
  const inv = 1 / updates.length;
  for (let i = 0; i < d; i++) {
    let sum = 0;
    for (const u of updates) sum += u[i]!;
    out[i] = sum * inv;
  }
  return out;
}
