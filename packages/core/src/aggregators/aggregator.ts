/**
 * The robust-aggregation strategy (DESIGN.md step 4, "Byzantine filter"; seed
 * ../shared/seeds/parle-and-byzantine-filters.md): one `Aggregator` interface, one file per rule,
 * registered by name.
 *
 * Every aggregator first runs the shared admit step: an input whose length differs from `out`
 * is rejected ('wrong-length'), an input with any NaN/±∞ coordinate is rejected ('non-finite').
 * Rejected inputs never reach a rule, so they cannot influence the output. If nothing is
 * admitted, `out` is zero-filled and `accepted` is empty. `options.f` is the number of Byzantine
 * inputs the rule must tolerate among the admitted ones; it is not reduced by the door's
 * rejections (conservative, and "aggregate all" equals "aggregate the finite ones" with the same
 * f). Rules that need more inputs than f allows degrade to a documented fallback, never throw.
 *
 * `out` must not be one of the inputs (checked). Reports list indices into `inputs`, ascending.
 */
import { aggregatorNames, type AggregatorName } from '@swarmgrad/protocol';
import { allFinite } from '../vector.ts';

export { aggregatorNames, type AggregatorName };

export interface AggregatorOptions {
  /** Number of Byzantine inputs to tolerate (non-negative integer). */
  f: number;
}

export type RejectReason = 'non-finite' | 'wrong-length' | 'filtered';

export interface Rejection {
  index: number;
  reason: RejectReason;
}

export interface AggregateReport {
  /** Indices of the inputs that contributed to the output, ascending. */
  accepted: number[];
  /** Inputs that did not contribute and why, ascending by index. */
  rejected: Rejection[];
}

export interface Aggregator {
  readonly name: AggregatorName;
  aggregate(
    inputs: readonly Float32Array[],
    out: Float32Array,
    options: AggregatorOptions,
  ): AggregateReport;
}

export interface MultiKrumParams {
  /** How many best-scored inputs to average; default n − f (n = admitted inputs). */
  m?: number;
}

export interface CenteredClippingParams {
  /** Clipping radius τ ≥ 0; default: the lower median of the admitted inputs' distances to the start center. */
  tau?: number;
  /** Number of clipping iterations ≥ 1; default CENTERED_CLIPPING_DEFAULT_ITERATIONS. */
  iterations?: number;
  /**
   * Start center, typically the previous aggregate (Karimireddy et al. use the momentum of the
   * last round). A vector, or a getter read at every `aggregate` call. Ignored (coordinate-wise
   * median used instead) when missing, of the wrong length or non-finite.
   */
  center?: Float32Array | (() => Float32Array | undefined);
}

export interface BucketingParams {
  /** Inputs per bucket s ≥ 1; default BUCKETING_DEFAULT_SIZE (2). */
  bucketSize?: number;
  /** The rule run over the bucket means; default 'centered-clipping'. */
  base?: Exclude<AggregatorName, 'bucketing'>;
  /** Seed of the bucket shuffle (default 1). */
  seed?: number;
  /** Start center of a centered-clipping base (see CenteredClippingParams). */
  center?: CenteredClippingParams['center'];
}

/** Per-name construction parameters accepted by `getAggregator`. */
export interface AggregatorParams {
  mean: undefined;
  cge: undefined;
  median: undefined;
  'trimmed-mean': undefined;
  krum: undefined;
  'multi-krum': MultiKrumParams;
  'centered-clipping': CenteredClippingParams;
  'sign-majority': undefined;
  bucketing: BucketingParams;
}

export type AggregatorFactory<N extends AggregatorName> = (
  params?: AggregatorParams[N],
) => Aggregator;

const registry = new Map<AggregatorName, (params?: unknown) => Aggregator>();

/** Register (or replace) the implementation behind a name. */
export function registerAggregator<N extends AggregatorName>(
  name: N,
  factory: AggregatorFactory<N>,
): void {
  registry.set(name, factory as (params?: unknown) => Aggregator);
}

/** A new aggregator instance for `name` (import from './index.ts' so every rule is registered). */
export function getAggregator<N extends AggregatorName>(
  name: N,
  params?: AggregatorParams[N],
): Aggregator {
  const factory = registry.get(name);
  if (factory === undefined) {
    throw new Error(`getAggregator: no aggregator registered under '${name}'`);
  }
  return factory(params);
}

export interface Admission {
  /** Admitted inputs, in input order. */
  vectors: Float32Array[];
  /** indices[k] is the position in `inputs` of vectors[k]. */
  indices: number[];
  /** Door rejections ('wrong-length' or 'non-finite'), ascending by index. */
  rejected: Rejection[];
}

/** The shared door: drop wrong-length and non-finite inputs. */
export function admit(inputs: readonly Float32Array[], dim: number): Admission {
  const vectors: Float32Array[] = [];
  const indices: number[] = [];
  const rejected: Rejection[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const v = inputs[i]!;
    if (v.length !== dim) rejected.push({ index: i, reason: 'wrong-length' });
    else if (!allFinite(v)) rejected.push({ index: i, reason: 'non-finite' });
    else {
      vectors.push(v);
      indices.push(i);
    }
  }
  return { vectors, indices, rejected };
}

/**
 * A robust rule on admitted inputs (at least one, all finite, all of length out.length). It
 * writes the aggregate into `out` and returns the positions (into `vectors`) it used, or `null`
 * when it used every admitted input.
 */
export type Rule = (
  vectors: readonly Float32Array[],
  out: Float32Array,
  f: number,
) => readonly number[] | null;

/** Wrap a rule with option checks, the admit step and report building. */
export function defineAggregator(name: AggregatorName, rule: Rule): Aggregator {
  return {
    name,
    aggregate(inputs, out, options) {
      const f = options.f;
      if (!Number.isInteger(f) || f < 0) {
        throw new RangeError(`${name}: f must be a non-negative integer, got ${f}`);
      }
      if (inputs.includes(out)) {
        throw new RangeError(`${name}: out must not be one of the inputs`);
      }
      const { vectors, indices, rejected } = admit(inputs, out.length);
      if (vectors.length === 0) {
        out.fill(0);
        return { accepted: [], rejected };
      }
      const used = rule(vectors, out, f);
      if (used === null) return { accepted: indices, rejected };
      const keep = new Uint8Array(vectors.length);
      for (const p of used) keep[p] = 1;
      const accepted: number[] = [];
      for (let p = 0; p < vectors.length; p++) {
        if (keep[p] === 1) accepted.push(indices[p]!);
        else rejected.push({ index: indices[p]!, reason: 'filtered' });
      }
      rejected.sort((a, b) => a.index - b.index);
      return { accepted, rejected };
    },
  };
}

/**
 * Total order on equal-length vectors (lexicographic by coordinate). Rules that rank inputs
 * (CGE by norm, Krum by score) break ties with it, so their choice depends only on the multiset of
 * inputs, not on their order.
 */
export function compareVectors(a: Float32Array, b: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/** In-place ascending insertion sort of s[0..n) — n is small (≤ a few dozen inputs). */
export function insertionSort(s: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const x = s[i]!;
    let j = i - 1;
    while (j >= 0 && s[j]! > x) {
      s[j + 1] = s[j]!;
      j--;
    }
    s[j + 1] = x;
  }
}
