/**
 * The engine.io heartbeat keeps a tab connected while the coordinator is merely slow
 * (docs/architecture.md, _Heartbeats that survive a busy coordinator_).
 *
 * The worst moment to stall is just after the coordinator wrote a ping: its pong timer runs,
 * the tab's pong arrives but waits in the socket, and when the event loop comes back the timers
 * run before the socket is read — so a stall longer than pingTimeout drops the tab although it
 * answered. The test blocks the coordinator's event loop right after a ping went out (the thread
 * sleeps in Atomics.wait: nothing of the coordinator runs meanwhile, and unlike a busy wait it
 * leaves the core to the tests running beside it), with the tab — a real socket.io client — in
 * its own process. The ping interval is shortened to 1 s so the ping comes soon; that only makes
 * the tab's own deadline (no ping for interval + timeout) stricter.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Server } from 'socket.io';
import type { Coordinator, Heartbeat } from '../src/index.ts';
import { startCoordinator, waitFor } from '@swarmgrad/test-support/harness';

const tabScript = fileURLToPath(new URL('./support/heartbeat-tab.ts', import.meta.url));
/** Longer than the 8 s ping timeout that dropped every tab of the 10,000-tab bench. */
const STALL_MS = 12_000;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

interface TabLine {
  event: 'welcome' | 'refused' | 'ping' | 'disconnect';
  reason?: string;
  at: number;
}

interface EngineSocket {
  readyState: string;
  on(event: 'packetCreate', listener: (packet: { type: string }) => void): void;
  on(event: 'heartbeat', listener: () => void): void;
  on(event: 'close', listener: (reason: string) => void): void;
  off(event: 'packetCreate', listener: (packet: { type: string }) => void): void;
}

/** Blocks this thread (the coordinator's event loop) for `ms` without using the CPU. */
function blockThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Starts a coordinator with `heartbeat`, connects one tab in a child process, blocks the
 * coordinator's event loop for `stallMs` right after it sends the tab a ping, then waits for two
 * more heartbeats or the connection's end.
 */
async function stallAfterPing(
  heartbeat: Partial<Heartbeat>,
  stallMs: number,
): Promise<{
  coordinator: Coordinator;
  lines: TabLine[];
  serverClose: string | undefined;
  pongsAfter: number;
}> {
  const coordinator = await startCoordinator({}, { heartbeat });
  cleanups.push(() => coordinator.close({ checkpoint: false }));
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', tabScript, coordinator.url],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  cleanups.unshift(() => {
    child.stdin?.end();
    child.kill();
  });
  const lines: TabLine[] = [];
  let pending = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const complete = pending.split('\n');
    pending = complete.pop()!;
    for (const line of complete) if (line.trim()) lines.push(JSON.parse(line) as TabLine);
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(
    () => lines.some((l) => l.event === 'welcome' || l.event === 'refused'),
    `the tab's welcome (${stderr})`,
    60_000,
  );
  expect(lines.map((l) => l.event)).toContain('welcome');

  // the coordinator's engine.io side of the tab's connection
  const engine = (coordinator as unknown as { io: Server }).io.engine as unknown as {
    clients: Record<string, EngineSocket>;
  };
  const sockets = Object.values(engine.clients);
  expect(sockets).toHaveLength(1);
  const socket = sockets[0]!;
  let serverClose: string | undefined;
  let pongs = 0;
  socket.on('close', (reason) => (serverClose = reason));
  socket.on('heartbeat', () => pongs++);

  await new Promise<void>((resolve) => {
    const onPacket = (packet: { type: string }) => {
      if (packet.type !== 'ping') return;
      socket.off('packetCreate', onPacket);
      // after this tick the ping is written and its pong timer armed: then stall
      setImmediate(() => {
        blockThread(stallMs);
        resolve();
      });
    };
    socket.on('packetCreate', onPacket);
  });
  const pongsAtStall = pongs;
  const stallEnd = Date.now();
  await waitFor(
    () => serverClose !== undefined || pongs >= pongsAtStall + 2,
    'two heartbeats after the stall, or the end of the connection',
    20_000,
  );
  // the tab's own view of a drop may lag the coordinator's
  if (serverClose !== undefined)
    await waitFor(() => lines.some((l) => l.event === 'disconnect'), 'the tab to notice', 20_000);
  else
    await waitFor(
      () => lines.some((l) => l.event === 'ping' && l.at > stallEnd),
      'a ping at the tab after the stall',
      20_000,
    );
  return { coordinator, lines, serverClose, pongsAfter: pongs - pongsAtStall };
}

describe('engine.io heartbeat', () => {
  it(`keeps a tab connected through a ${STALL_MS / 1000} s stall of the coordinator right after a ping`, async () => {
    // the production ping timeout (HEARTBEAT); only the interval is shortened. The tab got
    // pings after the stall (stallAfterPing waits for one): the heartbeat goes on
    const { coordinator, lines, serverClose, pongsAfter } = await stallAfterPing(
      { pingInterval: 1000 },
      STALL_MS,
    );
    expect(serverClose).toBeUndefined();
    expect(pongsAfter).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.event === 'disconnect')).toEqual([]);
    expect(coordinator.status().tabs).toBe(1);
  }, 120_000);

  it('drops the tab when the stall outlasts the ping timeout (the failure the test guards)', async () => {
    const { lines, serverClose } = await stallAfterPing(
      { pingInterval: 1000, pingTimeout: 2000 },
      4000,
    );
    // whichever side gives up first: the coordinator ('ping timeout': no pong handled in time)
    // or the tab (no ping for interval + timeout: the coordinator sees 'transport close')
    expect(['ping timeout', 'transport close']).toContain(serverClose);
    expect(lines.some((l) => l.event === 'disconnect')).toBe(true);
  }, 120_000);
});
