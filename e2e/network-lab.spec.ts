/**
 * Issue 14 with real browser tabs in the network lab (packages/swarm/src/lab.ts; CI runs as
 * root): the coordinator and coturn in the lab's public namespace, every tab in a home of its
 * own, with its own Chromium process, behind the profile's router. Each test reads the
 * selected ICE candidate pair of every link (getStats(), each link at both ends):
 *
 * 1. `nat` (one masquerading router per home): the default job reaches its target accuracy
 *    (0.9) and no link connects on host candidates — the homes cannot reach each other's
 *    private addresses — but through STUN (srflx/prflx), none relayed;
 * 2. `symmetric-nat` (a new port per destination): hole punching fails, links relay through
 *    TURN; the swarm trains 40 iterations (held-out accuracy ≥ 0.75) with no stalled round;
 * 3. `udp-blocked` (the routers drop all UDP): only TURN over TCP works; 40 iterations, no stall;
 * 4. `lan` (homes on the public bridge, no ICE servers): links connect on host candidates;
 * 5. `symmetric-nat` without TURN (STUN only): no link connects, the coordinator relays the
 *    register frames (issue 14, item 3); 40 iterations, no stalled round;
 * 6. `wan` (`nat` plus 20 Mbit/s, 1 % loss per direction, and 40 ± 10 ms delay where the
 *    kernel has netem): 40 iterations with no stalled round.
 *
 * Tabs use the wasm backend (the fastest here) instead of timing every backend.
 */
import { until, type Swarm, type SwarmSummary } from '@swarmgrad/swarm';
import { expect, test } from '@swarmgrad/swarm/fixture';

const backend = 'wasm' as const;

function note(type: string, value: unknown): void {
  const description = typeof value === 'string' ? value : JSON.stringify(value);
  console.log(`${type}: ${description}`);
  test.info().annotations.push({ type, description });
}

/** Runs until iteration `iterations`, sampling every tab's links once more at the end. */
async function trainFor(swarm: Swarm, iterations: number): Promise<SwarmSummary> {
  await swarm.untilJoined();
  const summary = await swarm.run({ accuracy: 0, maxIterations: iterations, timeoutSeconds: 300 });
  // every link selected a pair by now: the summary after a last sample counts them all
  await until(
    async () => {
      const all = await Promise.all(swarm.live().map((t) => t.dataChannels()));
      return all.every((links) => links.length > 0 && links.every((l) => l.candidatePair))
        ? true
        : undefined;
    },
    'every link to have a selected candidate pair',
    30_000,
  );
  const final = await swarm.close();
  return { ...final, ok: summary.ok, reason: summary.reason };
}

test('nat: tabs behind two home routers train to the target through STUN, on no host pair', async ({
  launchSwarm,
}) => {
  test.setTimeout(12 * 60_000);
  const swarm = await launchSwarm({ serve: true, tabs: 4, backend, network: { profile: 'nat' } });
  await swarm.untilJoined();
  const reached = await swarm.run({ timeoutSeconds: 540 });
  const summary = await swarm.close();
  note('nat', { ...summary, ok: reached.ok, reason: reached.reason });
  expect(reached.ok).toBe(true);
  expect(reached.accuracy!).toBeGreaterThanOrEqual(0.9);
  expect(summary.roundsStalled).toBe(0);
  const pairs = summary.candidatePairs;
  expect(pairs.host).toBe(0);
  expect(pairs.relay).toBe(0);
  expect(pairs.srflx + pairs.prflx).toBeGreaterThan(0);
});

for (const profile of ['symmetric-nat', 'udp-blocked'] as const) {
  test(`${profile}: links relay through the lab's TURN server and the swarm trains`, async ({
    launchSwarm,
  }) => {
    test.setTimeout(8 * 60_000);
    const swarm = await launchSwarm({ serve: true, tabs: 4, backend, network: { profile } });
    const summary = await trainFor(swarm, 40);
    note(profile, summary);
    expect(summary.ok).toBe(true);
    expect(summary.iterations).toBeGreaterThanOrEqual(40);
    // learning through the relays: chance is 0.1, the default job is past 0.8 at 40 on a LAN
    expect(summary.accuracy!).toBeGreaterThanOrEqual(0.75);
    expect(summary.roundsStalled).toBe(0);
    expect(summary.candidatePairs.relay).toBeGreaterThan(0);
    // nothing connects around the routers
    expect(summary.candidatePairs.host).toBe(0);
    if (profile === 'udp-blocked') {
      // no UDP leaves a home: every link is relayed (over TURN's TCP)
      expect(summary.candidatePairs.srflx + summary.candidatePairs.prflx).toBe(0);
    }
  });
}

test('lan: homes on one bridge connect on host candidates, with no STUN or TURN', async ({
  launchSwarm,
}) => {
  test.setTimeout(6 * 60_000);
  const swarm = await launchSwarm({ serve: true, tabs: 4, backend, network: { profile: 'lan' } });
  const summary = await trainFor(swarm, 20);
  note('lan', summary);
  expect(summary.ok).toBe(true);
  expect(summary.roundsStalled).toBe(0);
  expect(summary.candidatePairs.host).toBeGreaterThan(0);
  expect(summary.candidatePairs.srflx + summary.candidatePairs.relay).toBe(0);
});

// Through the wan routers (tbf 20 Mbit/s + 1 % nftables loss per direction; netem delay where
// the kernel has it). This test once failed with a tab that never joined: the 1 % loss had cost
// it a chunk of the training code ("Failed to fetch dynamically imported module"), and the page
// never asked again. The page now imports it again after a pause (apps/web volunteer/retry.ts;
// volunteer.spec.ts aborts a chunk fetch to test it).
test('wan: a shaped, lossy access link per tab, and no stalled round', async ({ launchSwarm }) => {
  test.setTimeout(8 * 60_000);
  const lines: string[] = [];
  const swarm = await launchSwarm({
    serve: true,
    tabs: 4,
    backend,
    network: { profile: 'wan' },
    log: (line) => lines.push(line),
  });
  const started = Date.now();
  const summary = await trainFor(swarm, 40);
  note('wan', { ...summary, seconds: (Date.now() - started) / 1000, lab: lines.slice(0, 3) });
  expect(lines.some((l) => /wan shaping per direction: 20 Mbit\/s, 1 % loss/.test(l))).toBe(true);
  expect(summary.ok).toBe(true);
  expect(summary.iterations).toBeGreaterThanOrEqual(40);
  expect(summary.roundsStalled).toBe(0);
  expect(summary.candidatePairs.host).toBe(0);
});

// Issue 14, item 3: behind symmetric NATs with STUN but no TURN server, no link connects (each
// NAT maps every destination to a new random port, so no hole punching works). The tabs report
// their failed links, the coordinator relays the clusters' register frames over socket.io, and
// training goes on with no stalled round.
test('symmetric-nat without TURN: no link connects; the coordinator relays and the swarm trains', async ({
  launchSwarm,
}) => {
  test.setTimeout(8 * 60_000);
  const swarm = await launchSwarm({
    serve: true,
    tabs: 4,
    backend,
    network: { profile: 'symmetric-nat', turn: false },
  });
  await swarm.untilJoined();
  const reached = await swarm.run({ accuracy: 0, maxIterations: 40, timeoutSeconds: 300 });
  const status = await swarm.status();
  const summary = await swarm.close();
  note('symmetric-nat-no-turn', {
    ...summary,
    ok: reached.ok,
    reason: reached.reason,
    relay: status.relay,
  });
  expect(reached.ok).toBe(true);
  expect(summary.iterations).toBeGreaterThanOrEqual(40);
  expect(summary.accuracy!).toBeGreaterThanOrEqual(0.75);
  expect(summary.roundsStalled).toBe(0);
  // no iteration can close without the relay: a proposal of the cluster of four counts once 2
  // other members confirmed it, each holding the proposer's register, which only the
  // coordinator could carry — at least 2 relayed frames per iteration
  expect(summary.relayedFrames).toBeGreaterThanOrEqual(2 * 40);
  expect(status.relay.pairs).toBeGreaterThan(0);
  expect(summary.candidatePairs.relay).toBe(0);
  expect(summary.candidatePairs.host).toBe(0);
});
