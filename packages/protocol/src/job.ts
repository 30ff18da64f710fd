/**
 * The job an operator runs: model, data, and the algorithm's settings. Validated with zod
 * when the coordinator starts (a bad file names the field and what was expected) and sent to
 * every tab in its welcome, so tab and coordinator never disagree on a setting.
 */
import { z } from 'zod';

export const modelPresets = ['mlp-784-128-10', 'softmax-784-10', 'mlp-784-32-10'] as const;
export type ModelPreset = (typeof modelPresets)[number];

/**
 * The in-cluster rule of a job that names none: a robust rule, because anyone may open the
 * volunteer page (issue 13). The recommendation computed in docs/results.md: Table 5 (one
 * cluster of 10: clean accuracy as the mean's, the best worst case over every attack with 2
 * attackers) and Table 7 (the default job's clusters of 4, where Multi-Krum with f = 1 falls
 * back to the coordinate median: clean as the mean's or better, the best worst case).
 */
export const DEFAULT_AGGREGATOR = 'multi-krum' as const;

/** Tolerates one Byzantine tab per cluster where the rule allows it (f < size / 2). */
export function defaultAggregator(clusterSize: number): { name: AggregatorName; f: number } {
  return { name: DEFAULT_AGGREGATOR, f: clusterSize >= 3 ? 1 : 0 };
}

/** The robust aggregation rules (packages/core/src/aggregators), one file each. */
export const aggregatorNames = [
  'mean',
  'cge',
  'median',
  'trimmed-mean',
  'krum',
  'multi-krum',
  'centered-clipping',
  'sign-majority',
  'bucketing',
] as const;
export type AggregatorName = (typeof aggregatorNames)[number];

export const aggregatorNameSchema = z.enum(aggregatorNames);

export const codecNameSchema = z.enum(['fp32', 'fp16', 'one-bit', 'stochastic-one-bit']);

export const modelSpecSchema = z.union([
  z.object({ preset: z.enum(modelPresets) }).strict(),
  z
    .object({
      /** A TF.js layers topology (the `modelTopology` of a model.json). */
      topology: z.record(z.string(), z.unknown()),
      inputShape: z.array(z.number().int().positive()).min(1).max(4),
      classes: z.number().int().min(2).max(1000),
    })
    .strict(),
]);

export const datasetSpecSchema = z.union([
  z
    .object({
      preset: z.literal('mnist'),
      train: z.number().int().min(100).max(9000).default(8000),
      heldOut: z.number().int().min(100).max(5000).default(2000),
      seed: z.number().int().default(1),
    })
    .strict(),
  z
    .object({
      /**
       * A dataset pack (docs/datasets.md): an http(s) or file URL of its manifest.json, or a
       * path (to the manifest or to the pack's directory) relative to the job file.
       */
      manifestUrl: z
        .string()
        .min(1)
        .max(2048)
        .refine(isManifestLocation, 'an http(s) or file URL, or a path relative to the job file'),
    })
    .strict(),
]);

/** A URL with scheme http, https or file, or a path (no scheme). */
function isManifestLocation(value: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(value);
  // a Windows drive letter (C:\…) is a path, not a scheme
  if (!scheme || /^[a-z]:[\\/]/i.test(value)) return true;
  if (!['http', 'https', 'file'].includes(scheme[1]!.toLowerCase())) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

export const jobSpecSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'lower-case letters, digits and dashes'),
    model: modelSpecSchema.default({ preset: 'mlp-784-128-10' }),
    dataset: datasetSpecSchema.default({ preset: 'mnist', train: 8000, heldOut: 2000, seed: 1 }),
    optimizer: z
      .object({
        kind: z.enum(['sgd', 'momentum']).default('sgd'),
        learningRate: z.number().positive().max(10).default(0.1),
        momentum: z.number().min(0).max(0.999).default(0.9),
      })
      .strict()
      .default({ kind: 'sgd', learningRate: 0.1, momentum: 0.9 }),
    batchSize: z.number().int().min(1).max(4096).default(64),
    /** Data partitions the training set is cut into (served as binary files). */
    partitions: z.number().int().min(1).max(4096).default(32),
    cluster: z
      .object({
        size: z.number().int().min(1).max(32).default(4),
        redundancy: z.number().int().min(0).max(31).default(1),
        scheme: z.enum(['cyclic', 'fractional-repetition']).default('cyclic'),
        placement: z.enum(['join-order', 'rtt']).default('join-order'),
      })
      .strict()
      .default({ size: 4, redundancy: 1, scheme: 'cyclic', placement: 'join-order' }),
    localSteps: z.number().int().min(1).max(1000).default(1),
    elastic: z.number().min(0).max(100).default(0),
    /**
     * Inside a cluster: `mean` decodes the gradient code exactly (straggler-proof); any other
     * rule aggregates the tabs' own update estimates robustly (Byzantine-tolerant for f).
     * Absent: `defaultAggregator(cluster.size)`.
     */
    aggregator: z
      .object({
        name: aggregatorNameSchema.default(DEFAULT_AGGREGATOR),
        f: z.number().int().min(0).default(0),
      })
      .strict()
      .optional(),
    agreement: z
      .object({
        mode: z.enum(['majority', 'average']).default('majority'),
        epsilon: z.number().positive().default(1e-4),
        /** After a majority of clusters proposed, wait this long for the others. */
        graceMs: z.number().int().min(0).max(60_000).default(250),
        /**
         * Majority mode, Byzantine proposals: per coordinate the agreement drops the
         * max(⌊trim·n⌋, 1 when n ≥ 3) lowest and highest of the n held proposals before
         * averaging (never more than ⌊(n − 1)/2⌋ per side).
         */
        trim: z.number().min(0).max(0.49).default(0.1),
        /** Majority mode: an update longer than clip × the (lower) median update norm is scaled down to it. */
        clip: z.number().min(1).max(1000).default(3),
        /**
         * Majority mode: the estimator over the proposals left after trimming — their mean
         * ('trimmed-mean'), or seed 000's midpoint (min + max)/2 ('midpoint', kept for
         * comparison: it loses accuracy as clusters grow, docs/results.md "agreement at scale").
         */
        estimator: z.enum(['trimmed-mean', 'midpoint']).default('trimmed-mean'),
      })
      .strict()
      .default({
        mode: 'majority',
        epsilon: 1e-4,
        graceMs: 250,
        trim: 0.1,
        clip: 3,
        estimator: 'trimmed-mean',
      }),
    /**
     * Threshold S (seed 001): a proposal whose delay — iterations since its base plus its
     * registers' staleness — exceeds S is dropped. "auto": the coordinator starts at
     * AUTO_INITIAL_STALENESS and sets S from its SDDE analysis of the delays it measures
     * (core staleness-policy.ts), between 0 and AUTO_MAX_STALENESS.
     */
    staleness: z.union([z.number().int().min(0).max(1000), z.literal('auto')]).default(2),
    /**
     * 'sdde': a proposal d iterations stale (age plus its registers' staleness) moves the model
     * by min(1, 1/(e·η·h·d)) of its size (seed 001's critical damping, core
     * staleness-policy.ts); 'none': every proposal counts in full.
     */
    stalenessStep: z.enum(['sdde', 'none']).default('sdde'),
    /**
     * Pipelined tabs (issue 16): a tab keeps taking local steps on the newest base it holds
     * while its register is exchanged and the round runs, and sends the steps made since its
     * previous register when the next iteration opens (at least `localSteps` of them, at most
     * PIPELINE_MAX_STEPS_FACTOR × localSteps before it waits). false: lock-step, a tab computes
     * `localSteps` from each new base and waits for the next. The default since pipelined tabs
     * reached 0.9 sooner at the default L = 1 in every benchmark run (docs/benchmarks.md).
     */
    pipeline: z.boolean().default(true),
    codec: z
      .object({
        name: codecNameSchema.default('one-bit'),
        blockSize: z
          .number()
          .int()
          .min(1)
          .max(1 << 20)
          .default(1024),
      })
      .strict()
      .default({ name: 'one-bit', blockSize: 1024 }),
    targetAccuracy: z.number().min(0).max(1).default(0.9),
    evaluateEvery: z.number().int().min(1).default(5),
    checkpointEvery: z.number().int().min(1).default(10),
    maxIterations: z.number().int().positive().optional(),
  })
  .strict()
  .superRefine((job, ctx) => {
    if (job.cluster.redundancy >= job.cluster.size) {
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'redundancy'],
        message: `must be smaller than cluster.size (${job.cluster.size})`,
      });
    }
    if (
      job.cluster.scheme === 'fractional-repetition' &&
      job.cluster.size % (job.cluster.redundancy + 1) !== 0
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'scheme'],
        message: 'fractional-repetition needs cluster.size divisible by redundancy + 1',
      });
    }
    const f = job.aggregator?.f ?? 0;
    if (f * 2 >= job.cluster.size && f > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['aggregator', 'f'],
        message: `must be below half of cluster.size (${job.cluster.size})`,
      });
    }
  })
  .transform((job) => ({
    ...job,
    aggregator: job.aggregator ?? defaultAggregator(job.cluster.size),
  }));

export type JobSpecInput = z.input<typeof jobSpecSchema>;
export type JobSpec = z.output<typeof jobSpecSchema>;

export const defaultJob: JobSpec = jobSpecSchema.parse({ name: 'mnist-mlp' });

/** Human-readable lines, one per problem: `path: message`. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    const path = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    return `${path}: ${issue.message}`;
  });
}

/**
 * The largest threshold `staleness: "auto"` may choose; tabs keep progress up to this age. 16
 * was tried: in the simulator's staleness table auto then chose S = 9 at η = 0.2 with 64 workers
 * and diverged (fixed S ≥ 9 diverges there too). The analysis takes the delay distribution as
 * independent of S, but a larger S accepts more updates, so more land between a read and its
 * write; near the stability boundary it is optimistic, and the cap keeps it off that edge.
 */
export const AUTO_MAX_STALENESS = 8;
/** The threshold an auto job starts with, before the coordinator's first analysis. */
export const AUTO_INITIAL_STALENESS = 2;

/** The staleness a tab may carry into a register: S, or the most an auto job may choose. */
export function stalenessLimit(job: Pick<JobSpec, 'staleness'>): number {
  return job.staleness === 'auto' ? AUTO_MAX_STALENESS : job.staleness;
}

/** The threshold a job starts with. */
export function initialStaleness(job: Pick<JobSpec, 'staleness'>): number {
  return job.staleness === 'auto' ? AUTO_INITIAL_STALENESS : job.staleness;
}
