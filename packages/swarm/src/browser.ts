/**
 * Real browser tabs for the swarm (and end-to-end tests and `npm run bench -- swarm`): one Chromium (Debian's,
 * see playwright.config.ts), one browser context per tab (its own storage and WebRTC stack, the
 * closest thing to separate volunteers a single browser gives), each opening the volunteer page
 * on the coordinator's LAN address and pressing Donate. Also the Node worker
 * (`swarmgrad worker --url …`) as a child process.
 *
 * Chromium only gives WebGPU and cross-origin isolation to secure contexts, and a plain-http
 * page on a LAN address is not one: the browser is launched with
 * `--unsafely-treat-insecure-origin-as-secure=<origin>`, so it must be launched after the
 * coordinator printed its port. Pages are opened with `?debug`, which installs the page's test
 * hook `window.__swarmgrad` (apps/web/src/volunteer/debug.ts): the worker's status, its data
 * channels' getStats() bytes, and the webgpu/cpu gradient check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chromium,
  type Browser,
  type BrowserContext,
  type ConsoleMessage,
  type Page,
} from '@playwright/test';
import type { WorkerStatus } from '@swarmgrad/worker';
import type {
  DataChannelTraffic,
  FaultMode,
  GradientCheck,
  SwarmgradDebug,
} from '@swarmgrad/protocol';
import { swarmgradCli, until } from './coordinator.ts';

/** TF.js backends a tab can be told to use (apps/web worker-factory.ts `?backend=`). */
export const tabBackends = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type TabBackend = (typeof tabBackends)[number];

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags of every headless Chromium here (e2e/playwright.config.ts uses them too). */
export const chromiumBaseArgs: readonly string[] = [
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-gpu-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The base flags, plus what many tabs on a LAN origin need. */
export function chromiumArgs(origin: string): string[] {
  return [
    ...chromiumBaseArgs,
    // many tabs share two cores: no tab may be deprioritised for being in the background
    '--disable-background-timer-throttling',
    '--disable-renderer-backgrounding',
    '--disable-backgrounding-occluded-windows',
    `--unsafely-treat-insecure-origin-as-secure=${origin}`,
  ];
}

/**
 * Launches headless Chromium for pages on `origin` (http://<lan ip>:<port>); `executablePath`
 * replaces Debian's binary (the network lab's wrapper that runs it in a namespace).
 */
export async function launchBrowser(
  origin: string,
  extraArgs: string[] = [],
  executablePath = chromiumPath,
): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [...chromiumArgs(origin), ...extraArgs],
  });
}

export interface BrowserTab {
  name: string;
  context: BrowserContext;
  page: Page;
  /** Console errors and page errors seen so far. */
  problems: string[];
  closed: boolean;
  /** The worker's status through the page's test hook (undefined before Donate). */
  status(): Promise<WorkerStatus | undefined>;
  dataChannels(): Promise<DataChannelTraffic[]>;
  gradientCheck(): Promise<GradientCheck>;
  /** Closes the tab as a volunteer does (the page and its context go away, no Leave). */
  close(): Promise<void>;
}

type HookWindow = { __swarmgrad?: SwarmgradDebug<WorkerStatus> };

/**
 * SWARMGRAD_TAB_LOG=<regular expression>: the tabs' console lines that match it are echoed to
 * stderr with their arguments as JSON (e.g. `quarantine` to see why a peer got a strike).
 */
function tabLogFilter(): RegExp | undefined {
  const pattern = process.env.SWARMGRAD_TAB_LOG;
  return pattern === undefined || pattern === '' ? undefined : new RegExp(pattern);
}

function echoConsole(name: string, message: ConsoleMessage): void {
  void Promise.all(message.args().map((a) => a.jsonValue().catch(() => '?'))).then((args) =>
    process.stderr.write(`[${name}] ${args.map((a) => JSON.stringify(a)).join(' ')}\n`),
  );
}

/** Opens the volunteer page with the test hook in a new context and, unless told not, Donates. */
export async function openTab(
  browser: Browser,
  origin: string,
  options: {
    name?: string;
    donate?: boolean;
    fault?: FaultMode;
    /** Force the tab's TF.js backend (`?backend=`) instead of measuring every one. */
    backend?: TabBackend;
    /** Other nodes of a multi-node coordinator the tab fails over to (`?coordinators=`). */
    coordinators?: string[];
    /** false: a pipelined job's steps on the page, not on a training thread (`?thread=off`). */
    thread?: boolean;
  } = {},
): Promise<BrowserTab> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems: string[] = [];
  const echo = tabLogFilter();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
    if (echo !== undefined && echo.test(m.text())) echoConsole(options.name ?? 'tab', m);
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  // ?fault=<mode>: the tab runs that fault-injection mode (apps/web worker-factory.ts)
  const fault = options.fault === undefined ? '' : `&fault=${encodeURIComponent(options.fault)}`;
  const backend = options.backend === undefined ? '' : `&backend=${options.backend}`;
  const thread = options.thread === false ? '&thread=off' : '';
  // ?coordinators=<url>,…: further coordinator nodes (apps/web volunteer/coordinators.ts)
  const nodes =
    options.coordinators === undefined || options.coordinators.length === 0
      ? ''
      : `&coordinators=${encodeURIComponent(options.coordinators.join(','))}`;
  await page.goto(`${origin.replace(/\/+$/, '')}/?debug${fault}${backend}${thread}${nodes}`);
  await page.waitForFunction(() => (globalThis as HookWindow).__swarmgrad !== undefined);
  if (options.donate ?? true) {
    const donate = page.getByTestId('donate');
    await donate.waitFor();
    await until(() => donate.isEnabled(), 'the Donate button to be enabled', 30_000);
    await donate.click();
  }
  const tab: BrowserTab = {
    name: options.name ?? 'tab',
    context,
    page,
    problems,
    closed: false,
    status: () => page.evaluate(() => (globalThis as HookWindow).__swarmgrad!.status()),
    dataChannels: () => page.evaluate(() => (globalThis as HookWindow).__swarmgrad!.dataChannels()),
    gradientCheck: () =>
      page.evaluate(() => (globalThis as HookWindow).__swarmgrad!.gradientCheck()),
    close: async () => {
      if (tab.closed) return;
      tab.closed = true;
      await page.close({ runBeforeUnload: false });
      await context.close();
    },
  };
  return tab;
}

/** Waits until the tab's worker is seated in a cluster with every peer linked, and computing. */
export async function untilTraining(tab: BrowserTab, timeoutMs = 90_000): Promise<WorkerStatus> {
  return until(
    async () => {
      const s = await tab.status();
      if (s?.error) throw new Error(`${tab.name}: ${s.error}`);
      const linked = s?.cluster?.peers.every((p) => p.link === 'connected') ?? false;
      return s !== undefined && s.steps > 0 && s.cluster !== undefined && linked ? s : undefined;
    },
    `${tab.name} to train with its cluster`,
    timeoutMs,
    250,
  );
}

export interface NodeWorkerProcess {
  pid: number;
  /** The tab id it printed once started. */
  tabId: Promise<string>;
  output(): string;
  /** The last progress line (`iteration N state: … (k/n links) …`). */
  lastLine(): string | undefined;
  stop(): Promise<void>;
}

/**
 * `swarmgrad worker --url <url>` (TF.js WASM/CPU, @roamhq/wrtc), printing its progress every 5 s.
 * `execPrefix`: argv the worker runs under (a network lab home's `ip netns exec <ns>`).
 */
export function startNodeWorker(
  url: string,
  args: string[] = [],
  execPrefix: readonly string[] = [],
): NodeWorkerProcess {
  const argv = [...execPrefix, process.execPath, swarmgradCli(), 'worker', '--url', url, ...args];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
  let exitCode: number | null | undefined;
  child.on('exit', (code) => (exitCode = code));
  const tabId = until(
    () => {
      if (exitCode !== undefined) throw new Error(`worker exited with ${exitCode}:\n${out}`);
      return /swarmgrad worker (\S+) on /.exec(out)?.[1];
    },
    'the Node worker to join',
    90_000,
    200,
  );
  tabId.catch(() => undefined);
  return {
    pid: child.pid!,
    tabId,
    output: () => out,
    lastLine: () =>
      out
        .split('\n')
        .filter((l) => l.startsWith('iteration '))
        .at(-1),
    stop: async () => {
      if (exitCode !== undefined) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
