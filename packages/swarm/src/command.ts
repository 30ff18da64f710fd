/**
 * `swarmgrad swarm`: the CI command over launchSwarm. apps/coordinator's cli.ts parses the
 * arguments (commander) and imports this module only when the command runs, so `serve` never
 * loads Playwright.
 *
 * Output: a progress bar (iteration, accuracy, tabs alive, stalls) when the stream is a
 * terminal, plain lines every 10 s when it is not; with `--json` the progress goes to stderr and
 * stdout carries exactly one line, the summary (watch.ts SwarmSummary). Exit code 0 only when
 * the target was met, 1 when it was not, 2 for bad arguments or a swarm that could not start.
 */
import cliProgress from 'cli-progress';
import { faultModes, type FaultMode } from '@swarmgrad/protocol';
import { checkSwarmOptions, launchSwarm, type LaunchSwarmOptions } from './swarm.ts';
import type { SwarmSummary } from './watch.ts';
import type { TabBackend } from './browser.ts';
import { networkProfiles, type NetworkProfile } from './lab.ts';

export { useCli } from './coordinator.ts';

export interface SwarmCommandOptions {
  url?: string;
  tabs: number;
  churn?: number;
  rejoin?: boolean;
  byzantine?: number;
  attack?: string;
  untilAccuracy?: number;
  maxIterations?: number;
  /** Seconds. */
  timeout: number;
  json?: boolean;
  /** true: the default job; a string: a job file. */
  serve?: true | string;
  tabsPerBrowser?: number;
  /** webgpu, webgl, wasm or cpu: every tab uses it instead of measuring. */
  backend?: string;
  /** A network lab profile (lab.ts); root only, with serve. */
  network?: string;
  /** `--network wan` shaping: ms, ms, percent, Mbit/s. */
  wanDelay?: number;
  wanJitter?: number;
  wanLoss?: number;
  wanRate?: number;
  /** `--no-turn`: the lab hands out STUN only (links behind symmetric NATs then fail). */
  turn?: boolean;
}

export class UsageError extends Error {}

/** The launch options and the target for the command's options; UsageError when they conflict. */
export function planSwarm(o: SwarmCommandOptions): {
  launch: LaunchSwarmOptions;
  target: { accuracy?: number; maxIterations?: number; timeoutSeconds: number };
} {
  if (o.url === undefined && o.serve === undefined) {
    throw new UsageError('give --url <coordinator> or --serve [job.json]');
  }
  if (o.url !== undefined && o.serve !== undefined) {
    throw new UsageError(
      '--url and --serve exclude each other (--serve starts its own coordinator)',
    );
  }
  if ((o.byzantine ?? 0) > 0 && o.attack === undefined) {
    throw new UsageError(`--byzantine needs --attack (${faultModes.join('|')})`);
  }
  if (o.attack !== undefined && !(faultModes as readonly string[]).includes(o.attack)) {
    throw new UsageError(`--attack must be one of ${faultModes.join(', ')}, got ${o.attack}`);
  }
  if (o.network !== undefined && !(networkProfiles as readonly string[]).includes(o.network)) {
    throw new UsageError(
      `--network must be one of ${networkProfiles.join(', ')}, got ${o.network}`,
    );
  }
  if (o.network !== undefined && o.serve === undefined) {
    throw new UsageError('--network needs --serve: the lab runs its own coordinator inside it');
  }
  if (o.wanLoss !== undefined && o.wanLoss > 100) {
    throw new UsageError(`--wan-loss is a percentage, got ${o.wanLoss}`);
  }
  if (o.rejoin && !(o.churn !== undefined && o.churn > 0)) {
    throw new UsageError('--rejoin replaces tabs closed by --churn: give --churn RATE too');
  }
  const launch: LaunchSwarmOptions = {
    tabs: o.tabs,
    ...(o.url === undefined ? {} : { url: o.url }),
    ...(o.serve === undefined ? {} : { serve: o.serve === true ? true : { job: o.serve } }),
    ...((o.byzantine ?? 0) > 0
      ? { byzantine: { count: o.byzantine!, attack: o.attack as FaultMode } }
      : {}),
    ...(o.churn !== undefined && o.churn > 0
      ? { churn: { rate: o.churn, rejoin: o.rejoin ?? false } }
      : {}),
    ...(o.tabsPerBrowser === undefined ? {} : { tabsPerBrowser: o.tabsPerBrowser }),
    ...(o.backend === undefined ? {} : { backend: o.backend as TabBackend }),
    ...(o.network === undefined
      ? {}
      : {
          network: {
            profile: o.network as NetworkProfile,
            wan: {
              ...(o.wanDelay === undefined ? {} : { delayMs: o.wanDelay }),
              ...(o.wanJitter === undefined ? {} : { jitterMs: o.wanJitter }),
              ...(o.wanLoss === undefined ? {} : { lossPercent: o.wanLoss }),
              ...(o.wanRate === undefined ? {} : { rateMbit: o.wanRate }),
            },
            ...(o.turn === false ? { turn: false } : {}),
          },
        }),
  };
  try {
    checkSwarmOptions(launch);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    launch,
    target: {
      ...(o.untilAccuracy === undefined ? {} : { accuracy: o.untilAccuracy }),
      ...(o.maxIterations === undefined ? {} : { maxIterations: o.maxIterations }),
      timeoutSeconds: o.timeout,
    },
  };
}

/** The `--json` line: the summary's fields, stable order, one line. */
export function summaryLine(summary: SwarmSummary): string {
  return JSON.stringify(summary);
}

/** Runs the command; resolves with the exit code. */
export async function runSwarmCommand(
  o: SwarmCommandOptions,
  io: { stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream } = {
    stdout: process.stdout,
    stderr: process.stderr,
  },
): Promise<number> {
  let plan: ReturnType<typeof planSwarm>;
  try {
    plan = planSwarm(o);
  } catch (error) {
    io.stderr.write(`swarmgrad swarm: ${(error as Error).message}\n`);
    return 2;
  }
  // progress goes where the JSON is not
  const stream = o.json ? io.stderr : io.stdout;
  const tty = stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  const say = (line: string) => {
    if (bar) bar.stop();
    stream.write(`${line}\n`);
    bar = undefined;
  };

  let swarm;
  try {
    swarm = await launchSwarm({ ...plan.launch, log: say });
  } catch (error) {
    // e.g. a lab that cannot be built (LabError: not root, no nftables), in one line
    io.stderr.write(`swarmgrad swarm: ${(error as Error).message}\n`);
    return 2;
  }
  const stopOnSignal = () => void swarm.close().then(() => process.exit(130));
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  let summary: SwarmSummary;
  try {
    await swarm.untilJoined();
    const targetAccuracy = plan.target.accuracy ?? (await swarm.status()).job.targetAccuracy;
    let lastLine = 0;
    swarm.onProgress((p) => {
      const acc = p.accuracy === null ? '   —  ' : `${(100 * p.accuracy).toFixed(1)}%`;
      if (tty) {
        const value = Math.round(100 * Math.min(1, (p.accuracy ?? 0) / (targetAccuracy || 1)));
        const payload = {
          iteration: p.iteration,
          acc,
          target: `${(100 * targetAccuracy).toFixed(1)}%`,
          tabs: p.tabsLive,
          phase: p.phase,
          stalls: p.roundsStalled,
          elapsed: Math.round(p.elapsedSeconds),
        };
        if (!bar) {
          bar = new cliProgress.SingleBar(
            {
              stream,
              format:
                'iteration {iteration} | accuracy {acc} → {target} [{bar}] | tabs {tabs} | {phase} | stalls {stalls} | {elapsed}s',
              hideCursor: true,
              clearOnComplete: false,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(100, value, payload);
        } else {
          bar.update(value, payload);
        }
      } else if (p.elapsedSeconds - lastLine >= 10) {
        lastLine = p.elapsedSeconds;
        stream.write(
          `${Math.round(p.elapsedSeconds)}s iteration ${p.iteration} accuracy ${acc} tabs ${p.tabsLive} ${p.phase} stalls ${p.roundsStalled}\n`,
        );
      }
    });
    summary = await swarm.run(plan.target);
    bar?.stop();
    bar = undefined;
    await swarm.close();
  } catch (error) {
    bar?.stop();
    await swarm.close().catch(() => undefined);
    io.stderr.write(`swarmgrad swarm: ${(error as Error).message}\n`);
    return 2;
  } finally {
    process.off('SIGINT', stopOnSignal);
    process.off('SIGTERM', stopOnSignal);
  }
  stream.write(
    `${summary.ok ? 'target met' : 'target missed'}: ${summary.reason}; ${summary.tabsClosed} tabs closed, ${summary.roundsStalled} rounds stalled, ${summary.wireBitsPerParam?.toFixed(3) ?? '—'} bits/parameter, ${summary.wallSeconds.toFixed(0)} s\n`,
  );
  if (o.json) io.stdout.write(`${summaryLine(summary)}\n`);
  return summary.ok ? 0 : 1;
}
