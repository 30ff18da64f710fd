/**
 * `launchSwarm(options)`: N real Chromium tabs (one browser context each, at most
 * `tabsPerBrowser` per browser process) on a coordinator's volunteer page, Donate pressed, and
 * what a CI run needs around them:
 *
 * - `serve`: start a coordinator child process first (`swarmgrad serve`, the given or the
 *   default job) and stop it at the end; otherwise `url` names a running one.
 * - `byzantine: { count, attack }`: `count` of the first tabs open the page with
 *   `?fault=<attack>` (packages/worker faults.ts); a coordinator refuses them unless started with
 *   `--allow-fault-injection` (launchSwarm then fails with the coordinator's refusal). For a
 *   register attack they are the last ones opened; for a `proposal-*` attack the first ones,
 *   joined before the others open, so that an attacker holds its cluster's proposer role from
 *   the start (the worst case: a proposal attack does nothing while another tab proposes).
 * - `churn: { rate, rejoin }`: a Poisson process closes on average `rate` × (tabs asked for)
 *   tabs per minute, each at a random moment INSIDE a round: the victim is watched until it is
 *   computing or has published its register for the coordinator's current iteration and its
 *   cluster has not proposed yet, and closed then (as a volunteer closes a tab: no Leave).
 *   `rejoin` opens a replacement (same fault mode, if any) right after each close.
 * - A poller reads `GET /api/status` every `pollMs` and feeds the stall detector (watch.ts); a
 *   sampler reads every tab's data-channel traffic (the frames and bytes its worker wrote per
 *   link, and getStats()) every few seconds and just before it closes, for `wireBitsPerParam`.
 *
 * `run(target)` waits until the target accuracy is reached (or the last iteration evaluated, or
 * the timeout) and returns the summary; `close()` stops churn, browsers and a served
 * coordinator. The Playwright fixture is in fixture.ts, the command in command.ts.
 */
import type { Browser } from '@playwright/test';
import type { DashboardStatus, DataChannelTraffic, FaultMode } from '@swarmgrad/protocol';
import { faultModes } from '@swarmgrad/protocol';
import {
  launchBrowser,
  openTab,
  tabBackends,
  type BrowserTab,
  type TabBackend,
} from './browser.ts';
import {
  fetchStatus,
  startCoordinator,
  until,
  type CoordinatorProcess,
  type StartCoordinatorOptions,
} from './coordinator.ts';
import {
  createNetworkLab,
  networkProfiles,
  type NetworkLab,
  type NetworkProfile,
  type WanShape,
} from './lab.ts';
import {
  StallDetector,
  candidatePairType,
  judge,
  type CandidatePairCounts,
  type StallOptions,
  type SwarmSummary,
  type SwarmTarget,
} from './watch.ts';

export interface ServeOptions {
  /** Job object or job file path (default: the default MNIST job). */
  job?: object | string;
  /** Accept fault-injection tabs (`--allow-fault-injection`); on when `byzantine` is set. */
  allowFaultInjection?: boolean;
  /** More `swarmgrad serve` arguments. */
  args?: string[];
  logLevel?: string;
}

export interface ChurnOptions {
  /** Tabs closed per minute, as a fraction of the tabs asked for (0.25: a quarter a minute). */
  rate: number;
  /** Open a replacement after each close. */
  rejoin?: boolean;
  /** Seed of the churn's random choices (default 1). */
  seed?: number;
}

export interface LaunchSwarmOptions {
  /**
   * The coordinator the tabs open (a LAN address: WebRTC gathers no loopback candidates). Nodes
   * of a multi-node coordinator (`swarmgrad serve --redis`): comma separated; tabs open the
   * first and fail over to the others (the page's `?coordinators=`).
   */
  url?: string;
  /** Start a local coordinator first (true: the default job). */
  serve?: boolean | ServeOptions;
  /** Tabs to open (1..64). */
  tabs: number;
  byzantine?: { count: number; attack: FaultMode };
  churn?: ChurnOptions;
  /** Browser contexts per Chromium process (default 8). */
  tabsPerBrowser?: number;
  /** Every tab uses this TF.js backend instead of measuring them all (default: measure). */
  backend?: TabBackend;
  stall?: StallOptions;
  /** Status poll interval, ms (default 500). */
  pollMs?: number;
  /**
   * Run the swarm in a network lab (lab.ts; root only, needs `serve`): the coordinator and a
   * TURN server in the lab's public namespace, every tab in a home of its own with its own
   * Chromium process, behind the profile's router. `tabsPerHome` (default 1) lets up to that
   * many tabs share a home and its Chromium (the end-to-end suite's `lan` lab: one process per
   * eight tabs, as without a lab, on lab addresses); their shared address is then exempt from
   * address groups, as a LAN's are.
   */
  network?: {
    profile: NetworkProfile;
    wan?: Partial<WanShape>;
    turn?: boolean;
    tabsPerHome?: number;
  };
  /** Progress and notable events, one line each. */
  log?: (line: string) => void;
}

export interface SwarmTab extends BrowserTab {
  /** The fault-injection mode it runs, if any. */
  fault: FaultMode | undefined;
  /** Tab ids the coordinator gave it (a new one after a coordinator restart). */
  ids: string[];
  openedAt: number;
  closedAt: number | undefined;
  /** Its data channels' traffic, last sampled. */
  traffic: DataChannelTraffic[];
}

export interface CloseRecord {
  tab: string;
  tabId: string | undefined;
  /** Closed inside a round (see `closeTab`). */
  midRound: boolean;
  iteration: number | undefined;
  clusterId: number | undefined;
  state: string | undefined;
  at: number;
}

export interface SwarmProgress {
  iteration: number;
  accuracy: number | null;
  phase: string;
  tabsLive: number;
  roundsStalled: number;
  elapsedSeconds: number;
}

export interface Swarm {
  /** What tabs open. */
  readonly url: string;
  /** Where the API is read (the loopback address of a served coordinator). */
  readonly apiUrl: string;
  /** The served coordinator (with `serve`). */
  readonly coordinator: CoordinatorProcess | undefined;
  /** Every tab opened, in order, closed ones included. */
  readonly tabs: readonly SwarmTab[];
  readonly closes: readonly CloseRecord[];
  readonly stalls: StallDetector;
  live(): SwarmTab[];
  status(): Promise<DashboardStatus>;
  /** The last status the poller read. */
  lastStatus(): DashboardStatus | undefined;
  openTab(options?: { name?: string; fault?: FaultMode }): Promise<SwarmTab>;
  /**
   * Waits (default up to 300 s) until every live tab has joined (has a tab id); rejects at once
   * when a tab was refused (e.g. fault-injection-disabled).
   */
  untilJoined(timeoutMs?: number): Promise<void>;
  /**
   * Closes a tab. With `midRound` (default true) it first waits (up to `timeoutMs`, default
   * 60 s) until the tab is inside a round: computing for the coordinator's current iteration,
   * or its register published and its cluster not yet aggregated, and the cluster has not
   * proposed (a pipelined tab: stepping toward its next register, whatever its cluster did).
   * Resolves with `midRound: false` when no such moment came in time (closed anyway).
   */
  closeTab(
    tab: SwarmTab,
    options?: { midRound?: boolean; timeoutMs?: number },
  ): Promise<CloseRecord>;
  /** Stops the churn process (close() does too). */
  stopChurn(): Promise<void>;
  onProgress(listener: (progress: SwarmProgress) => void): () => void;
  /** Waits for the target; resolves with the summary (ok false on timeout, never rejects on it). */
  run(target?: Partial<SwarmTarget>): Promise<SwarmSummary>;
  summary(verdict?: { ok: boolean; reason: string }): Promise<SwarmSummary>;
  /** Stops churn, samplers, browsers and a served coordinator; returns the final summary. */
  close(): Promise<SwarmSummary>;
}

/** Validates options; throws a RangeError naming the bad one. */
export function checkSwarmOptions(options: LaunchSwarmOptions): void {
  const { tabs, byzantine, churn } = options;
  if (!Number.isInteger(tabs) || tabs < 1 || tabs > 64) {
    throw new RangeError(`tabs must be an integer from 1 to 64, got ${tabs}`);
  }
  if (options.url === undefined && !options.serve) {
    throw new RangeError('give the coordinator url, or serve to start one');
  }
  for (const url of options.url === undefined ? [] : splitUrls(options.url)) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new RangeError(`url is not a URL: ${url}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new RangeError(`url must be http(s)://…, got ${url}`);
    }
  }
  if (byzantine) {
    if (!Number.isInteger(byzantine.count) || byzantine.count < 0 || byzantine.count > tabs) {
      throw new RangeError(
        `byzantine must be an integer from 0 to tabs (${tabs}), got ${byzantine.count}`,
      );
    }
    if (!(faultModes as readonly string[]).includes(byzantine.attack)) {
      throw new RangeError(
        `attack must be one of ${faultModes.join(', ')}, got ${byzantine.attack}`,
      );
    }
  }
  if (churn) {
    if (!(churn.rate >= 0) || !Number.isFinite(churn.rate)) {
      throw new RangeError(
        `churn rate must be a number ≥ 0 (tabs per minute per tab), got ${churn.rate}`,
      );
    }
  }
  if (options.backend !== undefined && !tabBackends.includes(options.backend)) {
    throw new RangeError(
      `backend must be one of ${tabBackends.join(', ')}, got ${options.backend}`,
    );
  }
  const perBrowser = options.tabsPerBrowser ?? 8;
  if (!Number.isInteger(perBrowser) || perBrowser < 1) {
    throw new RangeError(`tabsPerBrowser must be a positive integer, got ${perBrowser}`);
  }
  if (options.network) {
    if (!networkProfiles.includes(options.network.profile)) {
      throw new RangeError(
        `network must be one of ${networkProfiles.join(', ')}, got ${options.network.profile}`,
      );
    }
    const perHome = options.network.tabsPerHome ?? 1;
    if (!Number.isInteger(perHome) || perHome < 1) {
      throw new RangeError(`network.tabsPerHome must be a positive integer, got ${perHome}`);
    }
    if (!options.serve) {
      throw new RangeError('network needs serve: the lab runs its own coordinator inside it');
    }
  }
}

/** A small seeded generator (mulberry32) for the churn's choices. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function launchSwarm(options: LaunchSwarmOptions): Promise<Swarm> {
  checkSwarmOptions(options);
  const log = options.log ?? (() => undefined);
  const startedAt = Date.now();
  const pollMs = options.pollMs ?? 500;
  const perBrowser = options.tabsPerBrowser ?? 8;

  let coordinator: CoordinatorProcess | undefined;
  let lab: NetworkLab | undefined;
  let url: string;
  let apiUrl: string;
  /** Further nodes of a multi-node coordinator the tabs may fail over to. */
  let otherNodes: string[] = [];
  if (options.serve) {
    const serve: ServeOptions = options.serve === true ? {} : options.serve;
    const allowFaults = serve.allowFaultInjection ?? (options.byzantine?.count ?? 0) > 0;
    if (options.network) {
      lab = await createNetworkLab(options.network);
      log(
        `network lab ${lab.name}: ${lab.profile}, coordinator${lab.profile === 'lan' ? '' : ' and TURN'} on ${lab.publicAddress}`,
      );
      const shaped = lab.wanApplied;
      if (shaped) {
        log(
          `wan shaping per direction: ${shaped.rateMbit} Mbit/s, ${shaped.lossPercent} % loss, ${shaped.delayMs} ± ${shaped.jitterMs} ms delay`,
        );
        if (shaped.delayMs === 0 && (options.network.wan?.delayMs ?? 40) > 0) {
          log('warning: this kernel has no sch_netem (tc netem): the wan delay is not emulated');
        }
      }
    }
    const start: StartCoordinatorOptions = {
      args: [
        ...(allowFaults ? ['--allow-fault-injection'] : []),
        // a relay attack needs iteration frames that travel through the clusters
        ...(options.byzantine?.attack.startsWith('relay-') === true
          ? ['--dissemination', 'cluster']
          : []),
        ...(lab?.serveArgs ?? []),
        // tabs that share a home share its address: one machine's tabs, not a sybil's, as on a
        // LAN (whose private and own addresses form no address group either)
        ...(lab && (options.network?.tabsPerHome ?? 1) > 1
          ? ['--exempt-addresses', `private,self,${lab.publicAddress}/24`]
          : []),
        ...(serve.args ?? []),
      ],
      ...(serve.job === undefined ? {} : { job: serve.job }),
      ...(serve.logLevel === undefined ? {} : { logLevel: serve.logLevel }),
      ...(lab ? { execPrefix: lab.inPublic([]), address: lab.publicAddress } : {}),
    };
    try {
      coordinator = await startCoordinator(start);
    } catch (error) {
      await lab?.destroy();
      throw error;
    }
    url = coordinator.url;
    apiUrl = coordinator.loopbackUrl;
    log(`coordinator started at ${url} (data in ${coordinator.dataDir})`);
  } else {
    [url, ...otherNodes] = splitUrls(options.url!) as [string, ...string[]];
    apiUrl = url;
    const host = new URL(url).hostname;
    if (host === 'localhost' || host.startsWith('127.')) {
      log(`warning: ${url} is a loopback address; WebRTC between tabs needs a LAN address`);
    }
  }

  const browsers: Browser[] = [];
  const tabs: SwarmTab[] = [];
  const closes: CloseRecord[] = [];
  const stalls = new StallDetector(options.stall);
  const listeners = new Set<(p: SwarmProgress) => void>();
  let last: DashboardStatus | undefined;
  let stopped = false;
  let opened = 0;

  const live = () => tabs.filter((t) => !t.closed);

  const browserFor = async (): Promise<Browser> => {
    const tabsPerHome = options.network?.tabsPerHome ?? 1;
    if (lab) {
      // a home, and a Chromium process, per tabsPerHome tabs
      const index = Math.floor(opened / tabsPerHome);
      if (browsers.length <= index) {
        const home = await lab.addHome();
        browsers.push(await launchBrowser(url, [], home.chromium));
      }
      return browsers[index]!;
    }
    const index = Math.floor(opened / perBrowser);
    while (browsers.length <= index) browsers.push(await launchBrowser(url));
    return browsers[index]!;
  };

  const openSwarmTab = async (o: { name?: string; fault?: FaultMode } = {}): Promise<SwarmTab> => {
    const browser = await browserFor();
    const n = ++opened;
    const name = o.name ?? (o.fault ? `tab ${n} (${o.fault})` : `tab ${n}`);
    const tab = (await openTab(browser, url, {
      name,
      ...(o.fault === undefined ? {} : { fault: o.fault }),
      ...(options.backend === undefined ? {} : { backend: options.backend }),
      ...(otherNodes.length === 0 ? {} : { coordinators: otherNodes }),
    })) as SwarmTab;
    tab.fault = o.fault;
    tab.ids = [];
    tab.openedAt = Date.now();
    tab.closedAt = undefined;
    tab.traffic = [];
    tabs.push(tab);
    return tab;
  };

  /** Status, tab id and traffic of one tab (errors of a closing page ignored). */
  const sampleTab = async (tab: SwarmTab): Promise<void> => {
    if (tab.closed) return;
    try {
      const s = await tab.status();
      if (s?.tabId && !tab.ids.includes(s.tabId)) tab.ids.push(s.tabId);
      const traffic = await tab.dataChannels();
      if (traffic.length > 0) tab.traffic = traffic;
    } catch {
      // closed meanwhile
    }
  };

  const dimension = async (): Promise<number> => (last ?? (await fetchStatus(apiUrl))).dimension;

  // the poller: coordinator status → stall detector, progress
  const poller = (async () => {
    while (!stopped) {
      const at = Date.now();
      try {
        last = await fetchStatus(apiUrl);
        stalls.sample(at, last.iteration, last.phase);
      } catch {
        stalls.sample(at, last?.iteration ?? 0, 'unreachable');
      }
      const progress: SwarmProgress = {
        iteration: last?.iteration ?? 0,
        accuracy: last?.accuracy ?? null,
        phase: last?.phase ?? 'unreachable',
        tabsLive: live().length,
        roundsStalled: stalls.roundsStalled,
        elapsedSeconds: (Date.now() - startedAt) / 1000,
      };
      for (const l of listeners) l(progress);
      await sleep(pollMs);
    }
  })();

  // the sampler: tab ids and data-channel bytes
  const sampler = (async () => {
    while (!stopped) {
      for (const tab of live()) await sampleTab(tab);
      for (let i = 0; i < 10 && !stopped; i++) await sleep(500);
    }
  })();

  /**
   * Whether the tab is inside a round right now (see closeTab). A pipelined tab is whenever it
   * steps: its steps are its cluster's next register, and its cluster proposes for an iteration
   * within moments of it opening (the registers were ready), so "not yet proposed" would almost
   * never be seen.
   */
  const inRound = async (tab: SwarmTab) => {
    const s = await tab.status();
    if (!s || !s.cluster || s.iteration === undefined || s.phase !== 'training') return undefined;
    const pipelined = s.pipeline.enabled && s.state === 'computing';
    const busy =
      s.state === 'computing' ||
      (s.state === 'waiting' &&
        s.cluster.held.includes(s.cluster.slot) &&
        s.cluster.lastAggregate?.iteration !== s.iteration);
    if (!busy) return undefined;
    const c = await fetchStatus(apiUrl);
    if (c.phase !== 'training' || c.iteration !== s.iteration) return undefined;
    if (!pipelined && c.quorum.proposed.includes(s.cluster.id)) return undefined;
    return s;
  };

  const closeTab = async (
    tab: SwarmTab,
    o: { midRound?: boolean; timeoutMs?: number } = {},
  ): Promise<CloseRecord> => {
    if (tab.closed) throw new Error(`${tab.name} is already closed`);
    await sampleTab(tab);
    let found: Awaited<ReturnType<typeof inRound>>;
    if (o.midRound ?? true) {
      const deadline = Date.now() + (o.timeoutMs ?? 60_000);
      while (!found && Date.now() < deadline && !tab.closed) {
        try {
          found = await inRound(tab);
        } catch {
          found = undefined;
        }
      }
    }
    const s = found ?? (await tab.status().catch(() => undefined));
    await tab.close();
    tab.closedAt = Date.now();
    const record: CloseRecord = {
      tab: tab.name,
      tabId: s?.tabId,
      midRound: found !== undefined,
      iteration: s?.iteration,
      clusterId: s?.cluster?.id,
      state: s?.state,
      at: tab.closedAt,
    };
    closes.push(record);
    log(
      `closed ${tab.name} (${record.tabId ?? '?'})${record.midRound ? ` mid-round in iteration ${record.iteration}, cluster ${record.clusterId}, ${record.state}` : ''}`,
    );
    return record;
  };

  // churn: a Poisson process over the run, each close inside a round
  let churnStop = false;
  const churn = options.churn;
  const churnLoop =
    churn && churn.rate > 0
      ? (async () => {
          const random = rng(churn.seed ?? 1);
          const meanGapMs = 60_000 / (churn.rate * options.tabs);
          while (!churnStop && !stopped) {
            const gap = -Math.log(1 - random()) * meanGapMs;
            const wakeAt = Date.now() + gap;
            while (!churnStop && !stopped && Date.now() < wakeAt) await sleep(200);
            if (churnStop || stopped) break;
            // only while training (not before the first iteration)
            if (last?.phase !== 'training' || last.iteration < 1) continue;
            const candidates = live();
            if (candidates.length === 0) continue;
            const victim = candidates[Math.floor(random() * candidates.length)]!;
            try {
              await closeTab(victim, { midRound: true, timeoutMs: 30_000 });
              if (churn.rejoin && !stopped && !churnStop) {
                const replacement = await openSwarmTab(
                  victim.fault === undefined ? {} : { fault: victim.fault },
                );
                log(`opened ${replacement.name} to replace ${victim.name}`);
              }
            } catch (error) {
              if (!stopped) log(`churn: ${error instanceof Error ? error.message : String(error)}`);
            }
          }
        })()
      : Promise.resolve();

  /** `judged`: the status a verdict was reached on — its accuracy is the one reported, not a
   * newer evaluation's (the accuracy swings by a point between evaluations: a summary that
   * read the status again could say "target met" beside an accuracy under the target). */
  const summarize = async (
    verdict?: { ok: boolean; reason: string },
    judged?: DashboardStatus,
  ): Promise<SwarmSummary> => {
    let s = judged ?? last;
    if (!judged) {
      try {
        s = await fetchStatus(apiUrl);
      } catch {
        // unreachable: the last status read
      }
    }
    // per update frame, not per data-channel message: a frame of a large model is several
    // 64 KiB chunks (messages), so bytes / messages would undercount the bits per parameter
    let bytes = 0;
    let frames = 0;
    for (const tab of tabs) {
      // updates only: a link also carries peer messages (confirm requests, vouchers)
      for (const link of tab.traffic) {
        bytes += link.bytesSent - link.controlBytesSent;
        frames += link.framesSent - link.controlFramesSent;
      }
    }
    const candidatePairs: CandidatePairCounts = { host: 0, srflx: 0, prflx: 0, relay: 0 };
    for (const tab of tabs) {
      for (const link of tab.traffic) {
        if (link.candidatePair) candidatePairs[candidatePairType(link.candidatePair)]++;
      }
    }
    let d = s?.dimension ?? 0;
    if (d === 0 && frames > 0) d = await dimension().catch(() => 0);
    const median = stalls.medianIterationMs;
    const attackers = tabs.filter((t) => t.fault !== undefined);
    return {
      ok: verdict?.ok ?? false,
      reason: verdict?.reason ?? 'not judged',
      target: { accuracy: s?.job.targetAccuracy ?? 0.9, maxIterations: null, timeoutSeconds: 0 },
      iterations: s?.iteration ?? 0,
      accuracy: s?.accuracy ?? null,
      evaluatedAt: s?.evaluatedAt ?? null,
      phase: s?.phase ?? 'unreachable',
      tabs: options.tabs,
      tabsOpened: tabs.length,
      tabsClosed: closes.length,
      tabsClosedMidRound: closes.filter((c) => c.midRound).length,
      tabsLive: live().length,
      roundsStalled: stalls.roundsStalled,
      medianIterationSeconds: median === undefined ? null : median / 1000,
      longestWaitSeconds: stalls.longestWaitMs / 1000,
      stallThresholdSeconds: stalls.thresholdMs() / 1000,
      wireBitsPerParam: frames > 0 && d > 0 ? (8 * bytes) / (frames * d) : null,
      candidatePairs,
      relayedFrames: s?.relayedFrames ?? 0,
      iterationFrames: s?.iterationFrames ?? { relay: 0, direct: 0, request: 0 },
      wallSeconds: (Date.now() - startedAt) / 1000,
      quarantined: (s?.quarantined ?? []).map((q) => q.tabId),
      byzantine: attackers.flatMap((t) => t.ids),
      attack: options.byzantine && options.byzantine.count > 0 ? options.byzantine.attack : null,
    };
  };

  let closing: Promise<SwarmSummary> | undefined;
  const swarm: Swarm = {
    url,
    apiUrl,
    coordinator,
    tabs,
    closes,
    stalls,
    live,
    status: () => fetchStatus(apiUrl),
    lastStatus: () => last,
    openTab: openSwarmTab,
    untilJoined: async (timeoutMs = 300_000) => {
      const outcome = await until(
        async () => {
          for (const tab of live()) {
            const s = await tab.status();
            // a refused hello (e.g. fault-injection-disabled) is final: no point waiting
            if (s?.state === 'error') return { error: `${tab.name}: ${s.error ?? 'error'}` };
            if (!s?.tabId) return false;
            if (!tab.ids.includes(s.tabId)) tab.ids.push(s.tabId);
          }
          return { error: undefined };
        },
        'every tab to join the coordinator',
        timeoutMs,
        250,
      );
      if (outcome.error !== undefined) throw new Error(`a tab was refused: ${outcome.error}`);
    },
    closeTab,
    stopChurn: async () => {
      churnStop = true;
      await churnLoop;
    },
    onProgress: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    run: async (t = {}) => {
      const s = last ?? (await fetchStatus(apiUrl));
      const target: SwarmTarget = {
        accuracy: t.accuracy ?? s.job.targetAccuracy,
        maxIterations: t.maxIterations ?? null,
        timeoutSeconds: t.timeoutSeconds ?? 600,
      };
      let verdict: { ok: boolean; reason: string } | undefined;
      let judged: DashboardStatus | undefined;
      while (!verdict) {
        await sleep(pollMs);
        judged = last;
        if (!judged) continue;
        verdict = judge(target, judged, (Date.now() - startedAt) / 1000);
      }
      const out = await summarize(verdict, judged);
      return { ...out, target };
    },
    summary: (verdict) => summarize(verdict),
    close: () => {
      closing ??= (async () => {
        churnStop = true;
        await churnLoop;
        for (const tab of live()) await sampleTab(tab);
        const final = await summarize();
        stopped = true;
        await Promise.all([poller, sampler]);
        for (const browser of browsers) await browser.close().catch(() => undefined);
        await coordinator?.stop();
        await lab?.destroy();
        return final;
      })();
      return closing;
    },
  };

  try {
    const k = options.byzantine?.count ?? 0;
    // proposal and relay attackers need the proposer role (the relay is the proposer)
    const first = /^(proposal|relay)-/.test(options.byzantine?.attack ?? '');
    for (let i = 0; i < options.tabs; i++) {
      const attacker = first ? i < k : i >= options.tabs - k;
      const fault = attacker ? options.byzantine!.attack : undefined;
      await openSwarmTab(fault === undefined ? {} : { fault });
      // proposal attackers must hold the first seats, where the proposer role starts: the
      // honest tabs open only once they have joined (a slow backend trial reorders joins)
      if (first && i === k - 1) await swarm.untilJoined();
    }
    log(
      `${options.tabs} tabs opened on ${url}${k > 0 ? ` (${k} running ${options.byzantine!.attack})` : ''}`,
    );
  } catch (error) {
    await swarm.close().catch(() => undefined);
    throw error;
  }
  return swarm;
}

/** `a,b,c` → the origins, without trailing slashes or empty items. */
function splitUrls(list: string): string[] {
  const urls = list
    .split(',')
    .map((u) => u.trim().replace(/\/+$/, ''))
    .filter((u) => u.length > 0);
  if (urls.length === 0) throw new RangeError(`url is empty: ${list}`);
  return urls;
}
