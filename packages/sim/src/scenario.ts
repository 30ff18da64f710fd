/**
 * What a simulation runs: plain config types (no zod) with defaults, merged and checked by
 * `defineScenario`. Times are simulated seconds, sizes bytes. Every field has a default, so a
 * scenario only states what it varies.
 */
import {
  AGREEMENT_ESTIMATORS,
  aggregatorNames,
  type AgreementEstimator,
  type AggregatorName,
  type GradientCodeScheme,
  type LocalMode,
  type PlacementName,
} from '@swarmgrad/core';
import { codecNames, type CodecName } from '@swarmgrad/protocol';
import { isAttackName, type AttackName } from './attacks.ts';
import { checkDistribution, type TimeDistribution } from './distributions.ts';

export type ModelSpec =
  | { kind: 'softmax'; l2?: number }
  | { kind: 'mlp'; hidden?: number }
  | { kind: 'quadratic'; eigenvalues: readonly number[]; noise: number; initScale?: number };

export interface CodecSpec {
  name: CodecName;
  /** Scale block of the sign codecs (ignored by fp16/fp32). */
  blockSize: number;
  /** Error feedback on/off; undefined = the codec's default (on for one-bit only). */
  errorFeedback: boolean | undefined;
}

export type BackupSpec =
  | {
      kind: 'static';
      /** b: backups not waited for; undefined = the code's redundancy s (0 without coding). */
      backups: number | undefined;
    }
  | {
      kind: 'dynamic';
      /** Iterations of arrival times the policy remembers. */
      window: number;
      /** Fewest peers waited for; undefined = m − s with coding (exact decode), else 1. */
      minWait: number | undefined;
      /** ρ of core's correlatedGain; 0 = linearGain (seed 003's linear speedup). */
      correlation: number;
    };

export interface StragglerRegimes {
  /** Seconds per regime. */
  period: number;
  /** Share of workers slowed during a regime. */
  fraction: number;
  /** Their compute-time multiplier. */
  factor: number;
  /** When true, every other regime has no stragglers at all. */
  alternate: boolean;
}

export interface CrashSpec {
  /** Simulated time of the crash. */
  at: number;
  /** Indices (in initial placement order) of the clusters whose members crash. */
  clusters: number[];
  /** Members of each listed cluster that survive (the lowest seats); default 0: all crash. */
  keep?: number;
}

export interface Scenario {
  seed: number;
  /** Job name, hashed into every frame header (jobIdOf). */
  jobName: string;
  model: ModelSpec;
  data: {
    train: number;
    test: number;
    seed: number;
    /** Examples in one partition's shard; 0 = training set / partitions (at least 8). */
    shardSize: number;
    /** Test samples evaluated; undefined = all. */
    evalLimit: number | undefined;
  };
  /** Virtual workers at the start. */
  workers: number;
  cluster: {
    /** m: seats per cluster = gradient-coding slots. */
    size: number;
    /** s: gradient-coding redundancy; 0 = no coding (every worker holds one partition). */
    redundancy: number;
    scheme: GradientCodeScheme;
    placement: PlacementName;
    /** Re-run placement between iterations when membership changed (retires dead clusters). */
    rebalance: boolean;
  };
  training: {
    learningRate: number;
    batchSize: number;
    /** L: local steps per round (Parle); 1 = data-parallel SGD. */
    localSteps: number;
    mode: LocalMode;
    /** γ: elastic pull towards the agreed parameters ('elastic-sgd', 'entropy-sgd'). */
    elastic: number;
    momentum: number;
    /** Entropy-SGD inner loop ('entropy-sgd' only). */
    entropy: { scoping: number; innerSteps: number; noise: number } | undefined;
  };
  /** Worker → cluster messages. */
  codec: CodecSpec;
  /** Cluster → coordinator proposals and the coordinator's delta broadcast. */
  proposalCodec: CodecSpec;
  aggregator: {
    name: AggregatorName;
    f: number;
  };
  backup: BackupSpec;
  agreement: {
    mode: 'majority' | 'average';
    epsilon: number;
    /** Seconds to wait for the other live clusters once the quorum is held. */
    grace: number;
    /**
     * Proposals needed to close, 'average' mode only (core RoundEngine's `quorum`): undefined =
     * 1, DESIGN step 5's "averages whatever has arrived". 'majority' always needs a majority.
     */
    quorum: number | undefined;
    /**
     * 'majority' mode, core RoundEngine's options (undefined: the product's defaults —
     * estimator 'trimmed-mean', trim 0.1, trimFloor 1, clip 3). estimator 'midpoint' with trim
     * 0, trimFloor 0 and clip Infinity is seed 000's midpoint of all held proposals, the rule
     * before issue 13.
     */
    estimator?: AgreementEstimator | undefined;
    trim?: number | undefined;
    trimFloor?: number | undefined;
    clip?: number | undefined;
  };
  /**
   * S: a proposal computed on a base more than S iterations old is dropped. 'auto': the job
   * file's `staleness: "auto"` (issue 16 item 3) — the simulated coordinator starts at core's
   * AUTO_INITIAL_STALENESS and re-picks S from the SDDE analysis every `autoStaleness.every`
   * seconds (simulator.ts).
   */
  staleness: number | 'auto';
  /**
   * The job file's `stalenessStep` (issue 16 item 2): 'sdde' counts a proposal `delay`
   * iterations stale with core's stalenessStepScale(delay, η, h), as the coordinator's proposal
   * desk does (h: autoStaleness.curvature, or the quadratic's largest eigenvalue); 'none' counts
   * every proposal in full.
   */
  stalenessStep: 'none' | 'sdde';
  /** Read when `staleness` is 'auto' (every field) or `stalenessStep` is 'sdde' (curvature). */
  autoStaleness: {
    /** Simulated seconds between analyses (the real coordinator recomputes every 10 s). */
    every: number;
    /** The most recent proposal delays (dropped ones included) and task times analysed. */
    window: number;
    /**
     * h, the Hessian's top eigenvalue the analysis assumes; undefined = the quadratic's largest
     * eigenvalue (exact there). Other models must set it: the simulator does not estimate it.
     */
    curvature: number | undefined;
  };
  timing: {
    /** Compute time of one local step on one partition, before the worker's slowness factor. */
    compute: TimeDistribution;
    /** Share of workers that are persistently slow (phones) and by how much. */
    slowFraction: number;
    slowFactor: number;
    /** One-way link latency per message. */
    latency: TimeDistribution;
    /** Uplink bytes per second of every worker. */
    bandwidth: number;
    stragglers: StragglerRegimes | undefined;
    /**
     * The cluster's deadline (core WaitRule, as in the tab): first arrival + max(minPatience,
     * patienceFactor · (first arrival − start)). The product's 2000 ms and 3, here in seconds.
     */
    minPatience: number;
    patienceFactor: number;
    /**
     * The coordinator's time to close an iteration, ms: fixed + per live worker (cost-model.ts
     * `closeTimeOf`, fitted to the coordinator bench). Clusters start the next iteration that
     * much after the close. Undefined: closes take no time.
     */
    coordinatorClose: { fixedMs: number; perWorkerMs: number } | undefined;
  };
  churn: {
    /** Per worker, departures per second (exponential lifetimes); 0 = nobody leaves. */
    leaveRate: number;
    /** New workers per second (Poisson); 0 = nobody joins. */
    joinRate: number;
    crashes: CrashSpec[];
  };
  byzantine: {
    count: number;
    attack: AttackName;
    /** 'first': workers 0..count−1; 'spread': evenly spaced over the worker ids. */
    placement: 'first' | 'spread';
    /** Attack strength (see attacks.ts); undefined = the attack's default. */
    magnitude: number | undefined;
    /** Rounds the stale attack lags. */
    lag: number;
  };
  quarantine: {
    enabled: boolean;
    window: number;
    threshold: number;
    strikes: number;
    floor: number;
    /** core's alignment test (cosine with the others' median, z standard errors; the tab's default). */
    alignment: boolean;
    /** core's lag-symmetry test for replayed updates (the tab's default). */
    lagSymmetry: boolean;
  };
  stop: {
    maxIterations: number;
    /** Simulated seconds. */
    maxTime: number;
    targetAccuracy: number | undefined;
    targetLoss: number | undefined;
    /** Diverged when the held-out loss exceeds this multiple of the initial loss. */
    divergeFactor: number;
  };
  /** Evaluate the agreed parameters every this many iterations (and at the end). */
  evalEvery: number;
  /** Also evaluate after each of the first this many iterations (early curve detail). */
  evalEarly: number;
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[]
    ? T[K]
    : T[K] extends object | undefined
      ? DeepPartial<NonNullable<T[K]>> | (undefined extends T[K] ? undefined : never)
      : T[K];
};

export type ScenarioInput = Omit<DeepPartial<Scenario>, 'model' | 'backup' | 'timing'> & {
  model?: ModelSpec;
  backup?: Partial<BackupSpec> & { kind: BackupSpec['kind'] };
  timing?: Partial<Scenario['timing']>;
};

export const defaultScenario: Scenario = {
  seed: 1,
  jobName: 'sim',
  model: { kind: 'softmax' },
  data: { train: 8000, test: 2000, seed: 1, shardSize: 0, evalLimit: undefined },
  workers: 16,
  cluster: {
    size: 4,
    redundancy: 0,
    scheme: 'cyclic',
    placement: 'join-order',
    rebalance: true,
  },
  training: {
    learningRate: 0.1,
    batchSize: 16,
    localSteps: 1,
    mode: 'sgd',
    elastic: 0,
    momentum: 0,
    entropy: undefined,
  },
  codec: { name: 'one-bit', blockSize: 1024, errorFeedback: undefined },
  proposalCodec: { name: 'one-bit', blockSize: 1024, errorFeedback: undefined },
  aggregator: { name: 'cge', f: 0 },
  backup: { kind: 'static', backups: undefined },
  agreement: { mode: 'majority', epsilon: 1e-4, grace: 0.25, quorum: undefined },
  staleness: 2,
  stalenessStep: 'none',
  autoStaleness: { every: 10, window: 512, curvature: undefined },
  timing: {
    compute: { kind: 'shifted-exponential', shift: 0.05, mean: 0.02 },
    slowFraction: 0,
    slowFactor: 1,
    latency: { kind: 'log-normal', median: 0.03, sigma: 0.5 },
    bandwidth: 1e6,
    stragglers: undefined,
    minPatience: 2,
    patienceFactor: 3,
    coordinatorClose: undefined,
  },
  churn: { leaveRate: 0, joinRate: 0, crashes: [] },
  byzantine: { count: 0, attack: 'sign-flip', placement: 'spread', magnitude: undefined, lag: 20 },
  quarantine: {
    enabled: true,
    window: 10,
    threshold: 3,
    strikes: 2,
    floor: 0,
    alignment: false,
    lagSymmetry: false,
  },
  stop: {
    maxIterations: 100,
    maxTime: Infinity,
    targetAccuracy: undefined,
    targetLoss: undefined,
    divergeFactor: 1e4,
  },
  evalEvery: 5,
  evalEarly: 0,
};

function merge<T extends object>(base: T, patch: object | undefined): T {
  return patch === undefined ? { ...base } : ({ ...base, ...patch } as T);
}

function fail(message: string): never {
  throw new RangeError(`scenario: ${message}`);
}

function int(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) fail(`${name} must be an integer ≥ ${min}, got ${v}`);
}

function positive(name: string, v: number): void {
  if (!(v > 0)) fail(`${name} must be > 0, got ${v}`);
}

function nonNegative(name: string, v: number): void {
  if (!(v >= 0)) fail(`${name} must be ≥ 0, got ${v}`);
}

/** Defaults merged with `input`, checked. Throws RangeError naming the first bad field. */
export function defineScenario(input: ScenarioInput = {}): Scenario {
  const d = defaultScenario;
  const codec = merge(d.codec, input.codec);
  const backupKind = input.backup?.kind ?? 'static';
  const backup: BackupSpec =
    backupKind === 'static'
      ? merge({ kind: 'static', backups: undefined } as BackupSpec, input.backup)
      : merge(
          { kind: 'dynamic', window: 10, minWait: undefined, correlation: 0 } as BackupSpec,
          input.backup,
        );
  const s: Scenario = {
    seed: input.seed ?? d.seed,
    jobName: input.jobName ?? d.jobName,
    model: input.model ?? d.model,
    data: merge(d.data, input.data),
    workers: input.workers ?? d.workers,
    cluster: merge(d.cluster, input.cluster),
    training: merge(d.training, input.training),
    codec,
    proposalCodec: merge(
      {
        ...codec,
        name: codec.name === 'stochastic-one-bit' ? 'one-bit' : codec.name,
        errorFeedback: undefined,
      },
      input.proposalCodec,
    ),
    aggregator: merge(d.aggregator, input.aggregator),
    backup,
    agreement: merge(d.agreement, input.agreement),
    staleness: input.staleness ?? d.staleness,
    stalenessStep: input.stalenessStep ?? d.stalenessStep,
    autoStaleness: merge(d.autoStaleness, input.autoStaleness),
    timing: merge(d.timing, input.timing),
    churn: merge(d.churn, input.churn),
    byzantine: merge(d.byzantine, input.byzantine),
    quarantine: merge(d.quarantine, input.quarantine),
    stop: merge(d.stop, input.stop),
    evalEvery: input.evalEvery ?? d.evalEvery,
    evalEarly: input.evalEarly ?? d.evalEarly,
  };
  check(s);
  return s;
}

function check(s: Scenario): void {
  int('seed', s.seed, 0);
  int('workers', s.workers, 1);
  int('data.train', s.data.train, 1);
  int('data.test', s.data.test, 1);
  int('data.shardSize', s.data.shardSize, 0);
  const { size, redundancy, scheme } = s.cluster;
  int('cluster.size', size, 1);
  int('cluster.redundancy', redundancy, 0);
  if (redundancy >= size) fail(`cluster.redundancy ${redundancy} must be < cluster.size ${size}`);
  if (scheme === 'fractional-repetition' && size % (redundancy + 1) !== 0) {
    fail(`fractional repetition needs redundancy + 1 to divide cluster.size`);
  }
  const t = s.training;
  positive('training.learningRate', t.learningRate);
  int('training.batchSize', t.batchSize, 1);
  int('training.localSteps', t.localSteps, 1);
  nonNegative('training.elastic', t.elastic);
  if (t.mode === 'sgd' && t.elastic !== 0) fail(`mode 'sgd' has no elastic pull`);
  if (t.mode === 'entropy-sgd' && t.entropy === undefined) fail(`'entropy-sgd' needs entropy`);
  if (redundancy > 0) {
    if (t.localSteps !== 1 || t.mode === 'entropy-sgd' || t.momentum !== 0) {
      fail('gradient coding needs one plain local step (the coded message is linear in gradients)');
    }
    const linear =
      s.aggregator.name === 'mean' || (s.aggregator.name === 'cge' && s.aggregator.f === 0);
    if (scheme === 'cyclic' && !linear) {
      fail(
        `a cyclic code decodes linearly: use aggregator 'mean' (or cge with f = 0), or ` +
          `'fractional-repetition' to run '${s.aggregator.name}' over the groups`,
      );
    }
  }
  for (const c of [s.codec, s.proposalCodec]) {
    if (!codecNames.includes(c.name)) fail(`unknown codec '${c.name}'`);
    int('codec.blockSize', c.blockSize, 32);
    if (c.blockSize % 32 !== 0) fail(`codec.blockSize must be a multiple of 32`);
  }
  if (!aggregatorNames.includes(s.aggregator.name)) fail(`unknown aggregator`);
  int('aggregator.f', s.aggregator.f, 0);
  if (s.backup.kind === 'static') {
    if (s.backup.backups !== undefined) int('backup.backups', s.backup.backups, 0);
  } else {
    int('backup.window', s.backup.window, 1);
    if (s.backup.minWait !== undefined) int('backup.minWait', s.backup.minWait, 1);
    if (!(s.backup.correlation >= 0 && s.backup.correlation <= 1)) fail('backup.correlation');
  }
  positive('agreement.epsilon', s.agreement.epsilon);
  nonNegative('agreement.grace', s.agreement.grace);
  if (s.agreement.quorum !== undefined) {
    int('agreement.quorum', s.agreement.quorum, 1);
    if (s.agreement.mode !== 'average') fail(`agreement.quorum is an 'average' mode option`);
  }
  const { estimator, trim, clip } = s.agreement;
  if (estimator !== undefined && !AGREEMENT_ESTIMATORS.includes(estimator)) {
    fail(`agreement.estimator must be one of ${AGREEMENT_ESTIMATORS.join(', ')}`);
  }
  if (trim !== undefined && !(trim >= 0 && trim < 0.5)) fail('agreement.trim must be in [0, 0.5)');
  if (clip !== undefined && !(clip >= 1)) fail('agreement.clip must be ≥ 1 (Infinity: no clip)');
  const floor = s.agreement.trimFloor;
  if (floor !== undefined) int('agreement.trimFloor', floor, 0);
  if (s.staleness === 'auto') {
    const a = s.autoStaleness;
    positive('autoStaleness.every', a.every);
    int('autoStaleness.window', a.window, 1);
    if (a.curvature !== undefined) positive('autoStaleness.curvature', a.curvature);
    else if (s.model.kind !== 'quadratic') {
      fail(`staleness 'auto' on a ${s.model.kind} model needs autoStaleness.curvature`);
    }
  } else int('staleness', s.staleness === Infinity ? 0 : s.staleness, 0);
  if (s.stalenessStep !== 'none' && s.stalenessStep !== 'sdde')
    fail(`stalenessStep must be 'none' or 'sdde', got ${String(s.stalenessStep)}`);
  if (s.stalenessStep === 'sdde') {
    const h = s.autoStaleness.curvature;
    if (h !== undefined) positive('autoStaleness.curvature', h);
    else if (s.model.kind !== 'quadratic')
      fail(`stalenessStep 'sdde' on a ${s.model.kind} model needs autoStaleness.curvature`);
  }
  checkDistribution('timing.compute', s.timing.compute);
  checkDistribution('timing.latency', s.timing.latency);
  positive('timing.bandwidth', s.timing.bandwidth);
  if (!(s.timing.slowFraction >= 0 && s.timing.slowFraction <= 1)) fail('timing.slowFraction');
  positive('timing.slowFactor', s.timing.slowFactor);
  const close = s.timing.coordinatorClose;
  if (close !== undefined) {
    nonNegative('timing.coordinatorClose.fixedMs', close.fixedMs);
    nonNegative('timing.coordinatorClose.perWorkerMs', close.perWorkerMs);
  }
  const st = s.timing.stragglers;
  if (st !== undefined) {
    positive('stragglers.period', st.period);
    positive('stragglers.factor', st.factor);
    if (!(st.fraction >= 0 && st.fraction <= 1)) fail('stragglers.fraction');
  }
  nonNegative('churn.leaveRate', s.churn.leaveRate);
  nonNegative('churn.joinRate', s.churn.joinRate);
  for (const c of s.churn.crashes) {
    nonNegative('crash.at', c.at);
    if (c.keep !== undefined) int('crash.keep', c.keep, 0);
    for (const k of c.clusters) int('crash cluster', k, 0);
  }
  int('byzantine.count', s.byzantine.count, 0);
  if (s.byzantine.count > s.workers) fail('more Byzantine workers than workers');
  if (!isAttackName(s.byzantine.attack)) fail(`unknown attack '${s.byzantine.attack}'`);
  int('byzantine.lag', s.byzantine.lag, 1);
  int('quarantine.window', s.quarantine.window, 1);
  positive('quarantine.threshold', s.quarantine.threshold);
  int('quarantine.strikes', s.quarantine.strikes, 1);
  int('stop.maxIterations', s.stop.maxIterations, 1);
  positive('stop.maxTime', s.stop.maxTime);
  positive('stop.divergeFactor', s.stop.divergeFactor);
  int('evalEvery', s.evalEvery, 1);
  int('evalEarly', s.evalEarly, 0);
  if (
    s.model.kind === 'quadratic' &&
    s.byzantine.count > 0 &&
    s.byzantine.attack === 'label-flip'
  ) {
    fail('the quadratic has no labels to flip');
  }
}
