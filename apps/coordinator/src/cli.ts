/**
 * `swarmgrad` command line: `serve` runs a coordinator, `worker` donates this machine, `swarm`
 * runs headless-browser swarms for CI (packages/swarm).
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
// types only: `serve` must never load Playwright, the action imports the command lazily
import type { SwarmCommandOptions } from '@swarmgrad/swarm/command';
import { faultModes } from '@swarmgrad/protocol';
import { dirname, join, resolve } from 'node:path';
import { networkInterfaces } from 'node:os';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { Coordinator, type Dissemination } from './coordinator.ts';
import { ConfigError, loadJob } from './config.ts';
import { AddressGate, addressDefaults, blockListOf, type AddressOptions } from './addresses.ts';
import { DataError } from './pack/errors.ts';
import { addDatasetCommand } from './pack/command.ts';
import { readFileSync } from 'node:fs';
import {
  loadTlsFiles,
  selfSignedCertificate,
  trustInstructions,
  TlsConfigError,
  type SelfSigned,
  type TlsOptions,
} from './tls.ts';
import {
  checkIceOptions,
  defaultTurnTtlSeconds,
  iceRefreshMs,
  IceConfigError,
  type IceOptions,
} from './ice.ts';

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port 0-65535');
  return n;
}

/** A non-loopback IPv4 address: WebRTC between tabs needs one. */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const item of list ?? [])
      if (item.family === 'IPv4' && !item.internal) return item.address;
  }
  return undefined;
}

export function buildProgram(): Command {
  const program = new Command('swarmgrad').description(
    'browser volunteer-compute training: coordinator, swarms and benchmarks',
  );
  program
    .command('serve')
    .description('start a coordinator with a job (the default MNIST job when no --config)')
    .option('-c, --config <file>', 'job file (JSON)')
    .option('-p, --port <port>', 'HTTP and socket.io port', port, 8080)
    .option('--host <host>', 'interface to listen on', '0.0.0.0')
    .option('-d, --data-dir <dir>', 'checkpoints and journal', '.swarmgrad')
    .option('--allow-fault-injection', 'accept tabs that inject faults (tests only)', false)
    .option(
      '--redis <url>',
      'one node of a multi-node coordinator sharing its state in Redis, e.g. redis://127.0.0.1:6379',
    )
    .option(
      '--trust-proxy <ranges>',
      'reverse proxies (addresses or CIDRs, comma-separated) whose client-address header is believed',
      rangeList,
    )
    .option(
      '--client-ip-header <name>',
      'header a trusted proxy names the client in (X-Forwarded-For: its rightmost untrusted hop)',
      addressDefaults.clientHeader,
    )
    .option(
      '--ipv4-prefix <bits>',
      'IPv4 addresses sharing this prefix are one address group',
      prefixBits(32),
      addressDefaults.ipv4Prefix,
    )
    .option(
      '--ipv6-prefix <bits>',
      'IPv6 addresses sharing this prefix are one address group',
      prefixBits(128),
      addressDefaults.ipv6Prefix,
    )
    .option(
      '--exempt-addresses <ranges>',
      "addresses that form no group and are not join-limited: CIDRs, 'private', 'self' (this host) or 'none'",
      rangeList,
      [...addressDefaults.exempt],
    )
    .option(
      '--joins-per-minute <n>',
      'new tabs one address group may open per minute',
      positiveInt('--joins-per-minute'),
      addressDefaults.joinsPerMinute,
    )
    .option(
      '--join-burst <n>',
      'new tabs one address group may open at once',
      positiveInt('--join-burst'),
      addressDefaults.joinBurst,
    )
    .option('--tls-cert <file>', 'serve over https/wss with this PEM certificate (chain)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option(
      '--tls <mode>',
      "'self-signed': https with a throwaway certificate for local trials (kept in <data-dir>/tls/)",
    )
    .option('--stun <urls>', 'STUN servers for the tabs, comma-separated (stun:host:3478)', urlList)
    .option(
      '--turn <urls>',
      'TURN servers for the tabs, comma-separated (turn:host:3478?transport=udp,turns:host:5349?transport=tcp); credentials are derived from SWARMGRAD_TURN_SECRET or --turn-secret-file',
      urlList,
    )
    .option(
      '--turn-secret-file <file>',
      "file holding the TURN server's shared secret (coturn static-auth-secret)",
    )
    .option(
      '--turn-ttl <seconds>',
      'lifetime of the TURN credentials a tab gets in its welcome',
      positiveInt('--turn-ttl'),
      defaultTurnTtlSeconds,
    )
    .option(
      '--turn-refresh <seconds>',
      'how often a connected tab gets fresh TURN credentials (default: half of --turn-ttl)',
      positiveInt('--turn-refresh'),
    )
    .addOption(
      new Option(
        '--dissemination <mode>',
        'iteration frames: cluster (one per cluster, its relay tab forwards them) or direct (to every tab)',
      )
        .choices(['cluster', 'direct'])
        .default('cluster'),
    )
    .option('--log-level <level>', 'pino log level', process.env.LOG_LEVEL ?? 'info')
    .action(
      async (opts: {
        dissemination: Dissemination;
        tlsCert?: string;
        tlsKey?: string;
        tls?: string;
        stun?: string[];
        turn?: string[];
        turnSecretFile?: string;
        turnTtl: number;
        turnRefresh?: number;
        config?: string;
        port: number;
        host: string;
        dataDir: string;
        allowFaultInjection: boolean;
        redis?: string;
        logLevel: string;
        trustProxy?: string[];
        clientIpHeader: string;
        ipv4Prefix: number;
        ipv6Prefix: number;
        exemptAddresses: string[];
        joinsPerMinute: number;
        joinBurst: number;
      }) => {
        const logger = pino({ name: 'swarmgrad', level: opts.logLevel });
        const addresses: AddressOptions = {
          trustProxy: opts.trustProxy ?? [],
          clientHeader: opts.clientIpHeader.toLowerCase(),
          ipv4Prefix: opts.ipv4Prefix,
          ipv6Prefix: opts.ipv6Prefix,
          exempt: opts.exemptAddresses,
          joinsPerMinute: opts.joinsPerMinute,
          joinBurst: opts.joinBurst,
        };
        new AddressGate(addresses); // checks them before anything starts
        let job;
        try {
          job = await loadJob(opts.config);
        } catch (error) {
          if (error instanceof ConfigError) {
            process.stderr.write(`${error.message}\n`);
            process.exit(2);
          }
          throw error;
        }
        let tls: TlsOptions | undefined;
        let selfSigned: SelfSigned | undefined;
        let ice: IceOptions | undefined;
        try {
          ice = iceOptionsOf(opts);
          if (opts.tls !== undefined) {
            if (opts.tls !== 'self-signed')
              throw new TlsConfigError(`--tls takes 'self-signed', got '${opts.tls}'`);
            if (opts.tlsCert !== undefined || opts.tlsKey !== undefined)
              throw new TlsConfigError(
                '--tls self-signed and --tls-cert/--tls-key exclude each other',
              );
            tls = selfSigned = await selfSignedCertificate(join(resolve(opts.dataDir), 'tls'));
          } else if (opts.tlsCert !== undefined || opts.tlsKey !== undefined) {
            if (opts.tlsCert === undefined || opts.tlsKey === undefined)
              throw new TlsConfigError('--tls-cert and --tls-key go together');
            tls = await loadTlsFiles(opts.tlsCert, opts.tlsKey);
          }
        } catch (error) {
          if (error instanceof TlsConfigError || error instanceof IceConfigError) {
            process.stderr.write(`swarmgrad: ${error.message}\n`);
            process.exit(2);
          }
          throw error;
        }
        const webRoot = resolve(fileURLToPath(new URL('../../web/dist', import.meta.url)));
        let coordinator: Coordinator;
        try {
          coordinator = await Coordinator.start({
            job,
            port: opts.port,
            host: opts.host,
            dataDir: resolve(opts.dataDir),
            adminToken: process.env.SWARMGRAD_ADMIN_TOKEN,
            vouchSecret: process.env.SWARMGRAD_VOUCH_SECRET,
            allowFaultInjection: opts.allowFaultInjection,
            addresses,
            ...(opts.redis === undefined ? {} : { redis: opts.redis }),
            ...(process.env.SWARMGRAD_LEASE_MS
              ? { leaseMs: Number(process.env.SWARMGRAD_LEASE_MS) }
              : {}),
            webRoot,
            logger,
            ...(opts.config === undefined ? {} : { jobDir: dirname(resolve(opts.config)) }),
            ...(tls === undefined ? {} : { tls }),
            ...(ice === undefined ? {} : { ice }),
            dissemination: opts.dissemination,
          });
        } catch (error) {
          // the job's dataset pack is missing or bad: one line naming the file and the problem
          if (error instanceof DataError) {
            process.stderr.write(`swarmgrad: ${error.message}\n`);
            process.exit(2);
          }
          // multi-node start-up failures (Redis unreachable, another job in Redis): one line
          if (opts.redis === undefined) throw error;
          process.stderr.write(
            `swarmgrad: ${error instanceof Error ? error.message : String(error)}\n`,
          );
          process.exit(2);
        }
        const host = lanAddress() ?? '127.0.0.1';
        const base = `${tls ? 'https' : 'http'}://${host}:${coordinator.port}`;
        process.stdout.write(
          [
            `swarmgrad coordinator: job ${job.name}, ${coordinator.dimension} parameters, iteration ${coordinator.iteration}`,
            `  volunteer page: ${base}/`,
            `  dashboard:      ${base}/dashboard`,
            `  status:         ${base}/api/status`,
            `  admin token:    ${coordinator.adminToken}`,
            ...(opts.redis === undefined
              ? []
              : [
                  `  node:           ${coordinator.nodeId} of the coordinator sharing ${opts.redis}`,
                ]),
            ...(ice === undefined
              ? []
              : [
                  `  ICE servers:    ${[...ice.stun, ...ice.turn].join(', ')}${ice.turn.length > 0 ? ` (TURN credentials valid ${ice.turnTtlSeconds} s, refreshed every ${(iceRefreshMs(ice) ?? 0) / 1000} s)` : ''}`,
                ]),
            ...(selfSigned === undefined ? [] : trustInstructions(selfSigned, base)),
            '',
          ].join('\n'),
        );
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          logger.info({ signal }, 'checkpointing before exit');
          coordinator
            .close()
            .then(() => process.exit(0))
            .catch((error: unknown) => {
              logger.error({ err: error }, 'shutdown failed');
              process.exit(1);
            });
        };
        process.on('SIGTERM', () => stop('SIGTERM'));
        process.on('SIGINT', () => stop('SIGINT'));
      },
    );
  program
    .command('worker')
    .description(
      'donate this machine: run a training worker (TF.js WASM/CPU, WebRTC) for a coordinator',
    )
    .requiredOption('-u, --url <url[,url2]>', 'coordinator URL(s), comma separated')
    .option('-b, --backend <backend>', 'wasm or cpu (default: measure both, keep the faster)')
    .option('-t, --throttle <share>', 'fraction of wall time spent computing, 0..1', share, 1)
    .option('--log-level <level>', 'debug, info, warn, error or silent', 'warn')
    .action(async (opts: { url: string; backend?: string; throttle: number; logLevel: string }) => {
      if (opts.backend !== undefined && opts.backend !== 'wasm' && opts.backend !== 'cpu') {
        process.stderr.write(`--backend must be wasm or cpu, got ${opts.backend}\n`);
        process.exit(2);
      }
      // loaded here so that `serve` never loads the Node WebRTC binary
      const { runNodeWorker } = await import('@swarmgrad/worker/node');
      const { consoleLogger } = await import('@swarmgrad/worker');
      try {
        await runNodeWorker({
          url: opts.url
            .split(',')
            .map((u) => u.trim())
            .filter((u) => u.length > 0),
          ...(opts.backend ? { backend: opts.backend as 'wasm' | 'cpu' } : {}),
          throttle: opts.throttle,
          logger: consoleLogger(opts.logLevel as 'warn'),
        });
      } catch (error) {
        process.stderr.write(`worker: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      }
    });
  addSwarmCommand(program);
  addDatasetCommand(program);
  return program;
}

/** A comma-separated list of URLs (checked by checkIceOptions). */
function urlList(value: string): string[] {
  return value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '');
}

/** The ICE servers from the serve flags and SWARMGRAD_TURN_SECRET; undefined when none. */
function iceOptionsOf(opts: {
  stun?: string[];
  turn?: string[];
  turnSecretFile?: string;
  turnTtl: number;
  turnRefresh?: number;
}): IceOptions | undefined {
  const stun = opts.stun ?? [];
  const turn = opts.turn ?? [];
  if (stun.length === 0 && turn.length === 0) {
    if (opts.turnSecretFile !== undefined)
      throw new IceConfigError('--turn-secret-file without --turn');
    return undefined;
  }
  let turnSecret = process.env.SWARMGRAD_TURN_SECRET;
  if (opts.turnSecretFile !== undefined) {
    try {
      turnSecret = readFileSync(opts.turnSecretFile, 'utf8').trim();
    } catch (error) {
      throw new IceConfigError(`${opts.turnSecretFile}: cannot read (${(error as Error).message})`);
    }
  }
  return checkIceOptions({
    stun,
    turn,
    ...(turnSecret ? { turnSecret } : {}),
    turnTtlSeconds: opts.turnTtl,
    ...(opts.turnRefresh === undefined ? {} : { refreshSeconds: opts.turnRefresh }),
  });
}

function positiveInt(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${what}: a positive integer`);
    return n;
  };
}

/** A comma-separated list of addresses or CIDRs (or `private`, `none`), checked. */
function rangeList(value: string): string[] {
  const ranges = value
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
  try {
    blockListOf(ranges);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
  return ranges;
}

function prefixBits(max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`a prefix length 0-${max}`);
    return n;
  };
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('an integer ≥ 0');
  return n;
}

function nonNegative(value: string): number {
  const n = Number(value);
  if (!(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('a number ≥ 0');
  return n;
}

/** Options of `swarmgrad swarm` as commander parses them (packages/swarm command.ts runs it). */
export type SwarmCliOptions = SwarmCommandOptions;

function addSwarmCommand(program: Command): void {
  program
    .command('swarm')
    .description(
      'run N headless Chromium tabs against a coordinator (or one started with --serve); exit 0 only when the target is met',
    )
    .option(
      '-u, --url <url[,url2]>',
      'coordinator URL on a LAN address (WebRTC needs one); several nodes of one coordinator comma separated',
    )
    .option('-n, --tabs <n>', 'tabs to open, one browser context each', positiveInt('--tabs'), 4)
    .option(
      '--churn <rate>',
      'close tabs inside rounds: on average RATE × tabs per minute (0.25 = a quarter of the tabs a minute)',
      nonNegative,
    )
    .option('--rejoin', 'open a replacement for every tab --churn closes')
    .option('--byzantine <k>', 'K tabs run a fault-injection mode (--attack)', nonNegativeInt)
    .option('--attack <mode>', `the --byzantine tabs' fault mode: ${faultModes.join(', ')}`)
    .option(
      '--until-accuracy <a>',
      "target held-out accuracy (default: the job's targetAccuracy)",
      share,
    )
    .option(
      '--max-iterations <i>',
      'stop at iteration I; the target is judged on the accuracy there',
      positiveInt('--max-iterations'),
    )
    .option('--timeout <s>', 'give up after S seconds (exit 1)', positiveInt('--timeout'), 900)
    .option('--json', 'print one final JSON line (the summary) on stdout')
    .option(
      '--serve [job]',
      'start a local coordinator (the default job, or this job file) and stop it at the end',
    )
    .option(
      '--tabs-per-browser <n>',
      'browser contexts per Chromium process',
      positiveInt('--tabs-per-browser'),
      8,
    )
    .option(
      '--backend <name>',
      'every tab uses this TF.js backend (webgpu, webgl, wasm, cpu) instead of measuring',
    )
    .option(
      '--network <profile>',
      'root only: run coordinator, TURN server and tabs in a network lab of namespaces (lan, nat, symmetric-nat, udp-blocked, wan); needs --serve',
    )
    .option('--wan-delay <ms>', '--network wan: one-way delay per access link', nonNegative, 40)
    .option('--wan-jitter <ms>', '--network wan: delay jitter', nonNegative, 10)
    .option('--wan-loss <percent>', '--network wan: packet loss per direction', nonNegative, 1)
    .option('--wan-rate <mbit>', '--network wan: rate limit per direction', nonNegative, 20)
    .option(
      '--no-turn',
      '--network: hand the tabs STUN only, no TURN (behind symmetric NATs the coordinator then relays)',
    )
    .action(async (opts: SwarmCliOptions) => {
      // loaded here so that `serve` never loads Playwright
      const { runSwarmCommand, useCli } = await import('@swarmgrad/swarm/command');
      // the swarm starts coordinators and Node workers with this very executable
      useCli(fileURLToPath(new URL('../bin/swarmgrad.js', import.meta.url)));
      process.exitCode = await runSwarmCommand(opts);
    });
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError('a number in [0, 1]');
  return n;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  // bad arguments exit 2 like a bad job file (README), not commander's default 1, which
  // `swarmgrad swarm` keeps for "the target was not met"
  for (const command of [program, ...program.commands]) command.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  }
}
