/**
 * Agreement benchmark (issue 17): what one close's Byzantine-tolerant agreement costs the
 * coordinator (core rounds.ts `robustAgreement`: norm clipping, then per coordinate the
 * proposals' t lowest and t highest trimmed and the rest averaged), at the cluster counts of
 * 1,000 / 5,000 / 10,000 tabs in clusters of 8, beside a plain float64 mean of the same
 * proposals (what `agreement.mode: "average"` costs, one pass) measured in the same run.
 *
 *   npm run bench -- agreement [--clusters 125,625,1250] [--dimension 7850] [--reps 7] [--json]
 *
 * Proposals are seeded Gaussian updates around one base (core createRng). The same updates are
 * also encoded as one-bit frames (block 1024, what the coordinator's proposals are in a one-bit
 * job) and agreed on by core sign-agreement.ts `signAgreement` on their sign payloads, the path a
 * majority close takes when every proposal is a sign frame. Printed per cluster count: the
 * median milliseconds of each over `reps` repetitions and their ratios to the mean pass.
 */
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import {
  createRng,
  encodeToFrame,
  getCodec,
  robustAgreement,
  signAgreement,
  signUpdateOfFrame,
  type SignUpdate,
} from '@swarmgrad/core';

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function proposals(
  k: number,
  d: number,
  seed: number,
): { base: Float32Array; updates: Float32Array[] } {
  const rng = createRng(seed);
  const base = Float32Array.from({ length: d }, () => rng.next() - 0.5);
  const updates = Array.from({ length: k }, () =>
    Float32Array.from({ length: d }, () => 0.01 * (rng.next() + rng.next() + rng.next() - 1.5)),
  );
  return { base, updates };
}

/** The updates as one-bit sign payloads (block 1024, no error feedback). */
function signPayloads(updates: readonly Float32Array[], jobId: number): SignUpdate[] {
  return updates.map((u) => {
    const encoder = getCodec('one-bit').createEncoder(u.length, {
      blockSize: 1024,
      errorFeedback: false,
    });
    const frame = encodeToFrame(encoder, u, { jobId, iteration: 0, round: 0, senderSlot: 0 });
    const signs = signUpdateOfFrame(frame, { dimension: u.length, jobId });
    if (signs === undefined) throw new Error('a one-bit frame without a sign payload');
    return signs;
  });
}

/** The 'average' mode's pass: every proposal y_c = base + u_c summed in float64. */
function meanPass(base: Float32Array, updates: readonly Float32Array[]): Float32Array {
  const sum = new Float64Array(base.length);
  for (const u of updates) for (let i = 0; i < base.length; i++) sum[i]! += base[i]! + u[i]!;
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = sum[i]! / updates.length;
  return out;
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      clusters: { type: 'string', default: '125,625,1250' },
      dimension: { type: 'string', default: '7850' },
      reps: { type: 'string', default: '7' },
      json: { type: 'boolean', default: false },
    },
  });
  const clusterCounts = values.clusters.split(',').map(Number);
  const d = Number(values.dimension);
  const reps = Number(values.reps);
  if (clusterCounts.some((k) => !Number.isInteger(k) || k < 1) || !(d >= 1) || !(reps >= 1))
    throw new Error('--clusters, --dimension and --reps take positive integers');
  const rows = [];
  for (const k of clusterCounts) {
    const { base, updates } = proposals(k, d, k);
    const signs = signPayloads(updates, k);
    const robustMs: number[] = [];
    const signMs: number[] = [];
    const meanMs: number[] = [];
    let checksum = 0;
    // one untimed round first: the JIT compiles each on the first call
    for (let r = 0; r <= reps; r++) {
      let at = performance.now();
      const agreed = robustAgreement(base, updates, { trim: 0.1, clip: 3 }).agreed;
      const robust = performance.now() - at;
      at = performance.now();
      const signAgreed = signAgreement(base, signs, { trim: 0.1, clip: 3 })!.agreed;
      const sign = performance.now() - at;
      at = performance.now();
      const mean = meanPass(base, updates);
      const plain = performance.now() - at;
      checksum += agreed[0]! + signAgreed[0]! + mean[0]!;
      if (r > 0) {
        robustMs.push(robust);
        signMs.push(sign);
        meanMs.push(plain);
      }
    }
    const row = {
      clusters: k,
      dimension: d,
      robustMs: median(robustMs),
      signMs: median(signMs),
      meanMs: median(meanMs),
      robustVsMean: median(robustMs) / median(meanMs),
      signVsMean: median(signMs) / median(meanMs),
      checksum,
    };
    rows.push(row);
    if (!values.json)
      console.log(
        `${String(k).padStart(6)} clusters, d = ${d}: robust ${row.robustMs.toFixed(1)} ms ` +
          `(×${row.robustVsMean.toFixed(2)}), on sign frames ${row.signMs.toFixed(1)} ms ` +
          `(×${row.signVsMean.toFixed(2)}), mean ${row.meanMs.toFixed(1)} ms`,
      );
  }
  if (values.json)
    console.log(JSON.stringify({ bench: 'agreement', node: process.version, reps, rows }));
}
