/**
 * Network benchmark (issue 14): the default job trained by 4 real Chromium tabs in each profile
 * of the network lab (packages/swarm/src/lab.ts; root only), one profile after the other in one
 * run, so the rows share the machine's conditions.
 *
 *   npm run bench -- network [--profiles lan,nat,symmetric-nat,wan] [--tabs 4] [--timeout 900] [--json]
 *
 * Per profile: `launchSwarm` with `serve` and `network` (the coordinator and coturn in the lab's
 * public namespace, every tab in a home of its own behind the profile's router), until the
 * job's target accuracy (0.9) or the timeout. Columns: seconds from the tabs' Donate to the
 * target (the coordinator's first iteration start is within a second of it), iterations, bits
 * on the wire per parameter (the tabs' data-channel getStats()), the selected candidate pairs
 * by type, the median iteration time and the rounds the stall detector counted.
 */
import { loadavg } from 'node:os';
import { launchSwarm } from '@swarmgrad/swarm';
import { networkProfiles, type NetworkProfile } from '@swarmgrad/swarm';
import type { SwarmSummary } from '@swarmgrad/swarm';

interface Row {
  profile: NetworkProfile;
  ok: boolean;
  secondsToTarget: number | null;
  iterations: number;
  accuracy: number | null;
  wireBitsPerParam: number | null;
  candidatePairs: SwarmSummary['candidatePairs'];
  medianIterationSeconds: number | null;
  roundsStalled: number;
}

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

export async function run(args: string[]): Promise<void> {
  const profiles = (option(args, '--profiles') ?? 'lan,nat,symmetric-nat,wan')
    .split(',')
    .map((p) => p.trim()) as NetworkProfile[];
  for (const p of profiles) {
    if (!networkProfiles.includes(p)) {
      throw new RangeError(`--profiles: ${p} is not one of ${networkProfiles.join(', ')}`);
    }
  }
  const tabs = Number(option(args, '--tabs') ?? 4);
  const timeoutSeconds = Number(option(args, '--timeout') ?? 900);
  const json = args.includes('--json');
  const rows: Row[] = [];
  const load = loadavg()[0]!;
  for (const profile of profiles) {
    const swarm = await launchSwarm({
      serve: true,
      tabs,
      network: { profile },
      log: (line) => console.error(`[${profile}] ${line}`),
    });
    let summary: SwarmSummary;
    try {
      await swarm.untilJoined();
      const donated = Date.now();
      summary = await swarm.run({ timeoutSeconds });
      const seconds = (Date.now() - donated) / 1000;
      rows.push({
        profile,
        ok: summary.ok,
        secondsToTarget: summary.ok ? seconds : null,
        iterations: summary.iterations,
        accuracy: summary.accuracy,
        wireBitsPerParam: summary.wireBitsPerParam,
        candidatePairs: summary.candidatePairs,
        medianIterationSeconds: summary.medianIterationSeconds,
        roundsStalled: summary.roundsStalled,
      });
    } finally {
      await swarm.close();
    }
    console.error(`[${profile}] ${summary.reason}`);
  }
  if (json) {
    console.log(JSON.stringify({ tabs, loadAverageAtStart: load, rows }));
    return;
  }
  const pairs = (c: Row['candidatePairs']) =>
    (Object.entries(c) as [string, number][])
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '—';
  console.log(`${tabs} tabs, default job (MLP 784-128-10, 1-bit), load average ${load.toFixed(2)}`);
  console.log('');
  console.log(
    '| network | target met | s to 90 % | iterations | bits/param | selected pairs | median iteration (s) | rounds stalled |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.profile} | ${r.ok ? 'yes' : 'no'} | ${r.secondsToTarget?.toFixed(0) ?? '—'} | ${r.iterations} | ${r.wireBitsPerParam?.toFixed(3) ?? '—'} | ${pairs(r.candidatePairs)} | ${r.medianIterationSeconds?.toFixed(2) ?? '—'} | ${r.roundsStalled} |`,
    );
  }
}
