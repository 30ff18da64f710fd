/**
 * Issue 13, item 5, in Node: a real coordinator child process killed with SIGKILL and restarted
 * on its port and data directory, with real workers (TF.js WASM, real WebRTC via @roamhq/wrtc)
 * that reconnect by themselves.
 *
 * The restarted coordinator resumes at the iteration the workers hold (its journal), but it
 * forgot the tabs (they come back under new identities and are seated anew) and every proposal
 * it held. A worker that had already computed that iteration must compute it again in its new
 * seat; before the fix it sat "waiting for peers" with nobody left to write a register, and so
 * did the tabs of the SIGKILL chaos test (e2e/chaos.spec.ts) for 240 s.
 *
 * The kill is placed at that moment on purpose: three workers, clusters of two (a pair and a
 * lone worker), the lone worker paused so its cluster never proposes; the pair computes,
 * aggregates and proposes, and the coordinator holds that proposal while it waits for a
 * majority (both clusters) when it is killed. The pair must then close that iteration after
 * the restart while the lone worker is still paused (with the bug they stalled unless a lucky
 * seating slipped a zero update through), and once it resumes, all three train on.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  spawnCoordinator,
  status,
  tempDir,
  testJobInput,
  waitFor,
  type ChildCoordinator,
} from '@swarmgrad/test-support/harness';
import { createNodeWorker } from '../src/node.ts';
import { consoleLogger, silentLogger, type Logger } from '../src/runtime.ts';
import type { SwarmWorker } from '../src/worker.ts';

const children: ChildCoordinator[] = [];
const workers: SwarmWorker[] = [];

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.leave()));
  for (const c of children.splice(0)) c.process.kill('SIGKILL');
});

/**
 * The worker's logger (console when RESTART_DEBUG is set), recording the codes of the messages
 * the coordinator refused (client.ts logs each as 'coordinator rejected a message').
 */
function recordingLogger(name: string, refusals: string[]): Logger {
  const inner = process.env.RESTART_DEBUG ? consoleLogger('info', name) : silentLogger;
  return {
    ...inner,
    warn: (object, message) => {
      if (message === 'coordinator rejected a message') {
        const { code, event } = object as { code?: string; event?: string };
        refusals.push(`${name} ${event}: ${code}`);
      }
      inner.warn(object, message);
    },
  };
}

/** On a timeout, the coordinator's and the workers' view, so a failure says where it stood. */
async function explainTimeout<T>(
  url: string,
  of: () => SwarmWorker[],
  waiting: Promise<T>,
): Promise<T> {
  try {
    return await waiting;
  } catch (error) {
    const s = await status(url).catch((e: unknown) => String(e));
    const views = of().map((w) => {
      const ws = w.status();
      return {
        tabId: ws.tabId,
        state: ws.state,
        phase: ws.phase,
        iteration: ws.iteration,
        computed: ws.computedIteration,
        steps: ws.steps,
        connected: ws.connected,
        cluster: ws.cluster && {
          id: ws.cluster.id,
          slot: ws.cluster.slot,
          proposer: ws.cluster.proposer,
          held: ws.cluster.held,
          waitFor: ws.cluster.waitFor,
          peers: ws.cluster.peers.map((p) => `${p.tabId}:${p.link}${p.relayed ? ':relayed' : ''}`),
        },
        proposals: ws.proposals,
      };
    });
    throw new Error(
      `${(error as Error).message}\ncoordinator: ${JSON.stringify(s)}\nworkers: ${JSON.stringify(views)}`,
      { cause: error },
    );
  }
}

async function proposed(url: string): Promise<{ iteration: number; proposed: number[] }> {
  const s = (await (await fetch(`${url}/api/status`)).json()) as {
    iteration: number;
    quorum: { proposed: number[] };
  };
  return { iteration: s.iteration, proposed: s.quorum.proposed };
}

describe('a coordinator killed with SIGKILL and restarted', () => {
  it('its workers compute the iteration they had finished again, in their new seats, and train on', async () => {
    const dir = await tempDir();
    const config = join(dir, 'job.json');
    await writeFile(
      config,
      JSON.stringify({ ...testJobInput, cluster: { size: 2, redundancy: 1 }, checkpointEvery: 10 }),
    );
    const args = ['--config', config, '--data-dir', dir];
    const first = await spawnCoordinator(args);
    children.push(first);
    const port = new URL(first.url).port;
    const counted: { worker: SwarmWorker; iteration: number }[] = [];
    const refusals: string[] = [];
    for (let i = 0; i < 3; i++) {
      const worker = createNodeWorker({
        url: first.url,
        backend: 'wasm',
        logger: recordingLogger(`w${i}`, refusals),
        statusPollMs: 0,
        cluster: { minPatienceMs: 600 },
      });
      worker.on('proposal', (p) => {
        if (p.ok && p.counted) counted.push({ worker, iteration: p.iteration });
      });
      workers.push(worker);
    }
    await Promise.all(workers.map((w) => w.start()));
    const idsBefore = workers.map((w) => w.status().tabId!);

    // a pair and a lone worker, training
    await waitFor(
      async () => {
        const s = await status(first.url);
        const sizes = s.clusters.map((c) => c.members.filter((m) => m.live).length).sort();
        return s.iteration >= 12 && sizes.join() === '1,2' ? s : undefined;
      },
      'a cluster of two and one of one at iteration 12',
      90_000,
    );
    const lone = workers.find((w) => w.status().cluster?.peers.length === 0)!;
    const pair = workers.filter((w) => w !== lone);
    expect(pair.every((w) => w.status().cluster?.peers.length === 1)).toBe(true);
    lone.pause();
    // the pair computed the coordinator's iteration, its proposal was counted, and the
    // coordinator holds it (the lone worker's cluster never proposes). A pause stops a worker
    // before its next step, not what it already computed: a lone worker that had finished the
    // iteration's step proposes it after pause() (then the iteration closed just before the
    // kill and the coordinator resumed one iteration later, a fresh-clone CI failure), so the
    // lone worker must not have computed the iteration held either
    const killedAt = await waitFor(
      async () => {
        const s = await proposed(first.url);
        const waiting = pair.every((w) => {
          const ws = w.status();
          return ws.iteration === s.iteration && ws.state === 'waiting';
        });
        const held = counted.some((c) => pair.includes(c.worker) && c.iteration === s.iteration);
        const loneQuiet = lone.status().computedIteration < s.iteration;
        return waiting && held && loneQuiet && s.proposed.length === 1 ? s.iteration : undefined;
      },
      "the pair's proposal held while the lone worker is paused",
      30_000,
    );
    first.process.kill('SIGKILL');
    await first.exited;
    const stepsAtKill = workers.map((w) => w.status().steps);

    const second = await spawnCoordinator([...args, '--port', port]);
    children.push(second);
    expect(second.url).toBe(first.url);
    // the journal holds every iteration a tab heard of
    expect((await status(second.url)).iteration).toBe(killedAt);

    // the pair trains on by itself (the lone worker still paused): the iteration it had
    // finished is computed again and closed. Only that iteration is required: the restarted
    // coordinator seats the tabs anew in the order they return, and when the paused worker
    // returns last it sits alone in one of the two clusters, whose majority then waits for it
    // (the majority limit, docs/architecture.md) — 1 run in about 30 here, which this test
    // once reported as a failure to "close 3 iterations".
    await explainTimeout(
      second.url,
      () => workers,
      waitFor(
        async () => {
          const s = await status(second.url);
          const trained = pair.every((w) => w.status().steps > stepsAtKill[workers.indexOf(w)]!);
          return s.tabs === 3 && s.iteration > killedAt && trained ? s : undefined;
        },
        'the pair to reconnect and close the iteration held at the kill',
        // reseated tabs must have their first proposals confirmed by their new peers (a member
        // still missing a register waits up to 3 s; an unconfirmed proposal moves the role on)
        60_000,
      ),
    );

    lone.resume();
    const trained = await waitFor(
      async () => {
        const s = await status(second.url);
        const all = workers.every((w, i) => {
          const ws = w.status();
          return (
            ws.connected && ws.steps > stepsAtKill[i]! && (ws.iteration ?? -1) >= killedAt + 10
          );
        });
        return s.phase === 'training' && all ? s : undefined;
      },
      'all three workers to train 10 iterations past the restart',
      60_000,
    );
    const sizes = trained.clusters.map((c) => c.members.filter((m) => m.live).length).sort();
    expect(sizes).toEqual([1, 2]);
    // the restarted coordinator did not know them: new identities
    for (const w of workers) expect(idsBefore).not.toContain(w.status().tabId);
    // Whoever is seated first after the restart trains alone, as fast as it computes (hundreds
    // of iterations a second with this model): its proposals, reports and the signals to its
    // returning peers once went over the coordinator's event budget, the signals were refused
    // and the pair did not reconnect in 60 s. The client paces itself now: nothing is refused.
    expect(refusals.filter((r) => r.endsWith('rate-limited'))).toEqual([]);
  }, 180_000);
});
