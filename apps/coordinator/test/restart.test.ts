/**
 * The coordinator as a real process: SIGKILL and restart resumes from checkpoint + journal,
 * SIGTERM checkpoints before exit, and a bad job file stops it with a precise message.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeFrameInto } from '@swarmgrad/core';
import { FakeWorker } from '@swarmgrad/test-support/fake-worker';
import { DeltaJournal } from '../src/journal.ts';
import {
  runCli,
  spawnCoordinator,
  status,
  tempDir,
  testJobInput,
  waitFor,
  type ChildCoordinator,
} from '@swarmgrad/test-support/harness';

const children: ChildCoordinator[] = [];
const workers: FakeWorker[] = [];

afterEach(() => {
  for (const w of workers.splice(0)) w.close();
  for (const c of children.splice(0)) c.process.kill('SIGKILL');
});

async function jobFile(dir: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, 'job.json');
  await writeFile(
    file,
    JSON.stringify({ ...testJobInput, cluster: { size: 1, redundancy: 0 }, ...overrides }),
  );
  return file;
}

async function paramsAt(
  url: string,
  dimension: number,
  jobId: number,
): Promise<{ iteration: number; params: Float32Array }> {
  const bytes = new Uint8Array(await (await fetch(`${url}/api/params`)).arrayBuffer());
  const params = new Float32Array(dimension);
  const header = decodeFrameInto(bytes, params, { dimension, jobId });
  if (!header.ok) throw new Error(header.error.code);
  return { iteration: header.value.iteration, params };
}

describe('coordinator process', () => {
  it('SIGKILL mid-training, restart: resumes at the last closed iteration with identical parameters', async () => {
    const dir = await tempDir();
    const config = await jobFile(dir);
    const first = await spawnCoordinator(['--config', config, '--data-dir', dir]);
    children.push(first);
    const w = await FakeWorker.connect({ url: first.url });
    workers.push(w);
    await waitFor(async () => (await status(first.url)).iteration >= 10, 'iteration 10', 60_000);
    first.process.kill('SIGKILL');
    await first.exited;
    w.close(); // what the worker held when the coordinator died is the truth to compare with
    const killedAt = w.iteration;
    const heldBase = Float32Array.from(w.base);
    expect(killedAt).toBeGreaterThanOrEqual(10);
    // the journal as the dead process left it, read before the restart can rotate it: the
    // records after the iteration the tab last heard of (at most the one being announced)
    const unheard = new DeltaJournal(dir, 0).read(killedAt);

    const second = await spawnCoordinator(['--config', config, '--data-dir', dir]);
    children.push(second);
    const resumed = await paramsAt(second.url, w.welcome.dimension, w.welcome.jobId);
    // every iteration a tab heard of was journaled first; at most the one being announced
    // when the process died is ahead of what this tab saw
    expect(resumed.iteration).toBeGreaterThanOrEqual(killedAt);
    expect(resumed.iteration).toBeLessThanOrEqual(killedAt + 1);
    if (resumed.iteration === killedAt) {
      // nothing was journaled past what the tab heard: the tab's base, bit for bit
      expect(unheard).toEqual([]);
      expect(resumed.params).toEqual(heldBase);
    } else {
      // the iteration being announced when the process died: journaled before any tab heard
      // of it, so the resumed parameters are the tab's base plus that one journaled delta
      expect(unheard.map((r) => r.iteration)).toEqual([killedAt + 1]);
      const expected = Float32Array.from(heldBase);
      const applied = decodeFrameInto(unheard[0]!.frame, expected, {
        dimension: w.welcome.dimension,
        jobId: w.welcome.jobId,
      });
      expect(applied.ok).toBe(true);
      expect(resumed.params).not.toEqual(heldBase);
      expect(resumed.params).toEqual(expected);
    }
    // and it trains on from there with a new tab
    const again = await FakeWorker.connect({ url: second.url });
    workers.push(again);
    expect(again.iteration).toBe(resumed.iteration);
    await waitFor(
      async () => (await status(second.url)).iteration >= resumed.iteration + 3,
      'training after restart',
    );
  });

  it('SIGTERM writes a checkpoint of the current iteration before exiting', async () => {
    const dir = await tempDir();
    const config = await jobFile(dir, { checkpointEvery: 1000 });
    const child = await spawnCoordinator(['--config', config, '--data-dir', dir]);
    children.push(child);
    const w = await FakeWorker.connect({ url: child.url });
    workers.push(w);
    await waitFor(async () => (await status(child.url)).iteration >= 5, 'iteration 5', 60_000);
    w.close();
    await new Promise((r) => setTimeout(r, 200));
    const before = await status(child.url);
    const last = before.iteration;
    child.process.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    const names = await readdir(join(dir, 'checkpoints'));
    const latest = (await readFile(join(dir, 'checkpoints', 'LATEST'), 'utf8')).trim();
    expect(names).toContain(latest);
    expect(latest).toContain(String(last).padStart(9, '0'));
    const model = JSON.parse(
      await readFile(join(dir, 'checkpoints', latest, 'model.json'), 'utf8'),
    ) as {
      format: string;
      weightsManifest: { paths: string[] }[];
    };
    expect(model.format).toBe('layers-model');
    expect(model.weightsManifest[0]!.paths).toEqual(['weights.bin']);
    // the wire counters, with their breakdown by path, come back with the checkpoint
    expect(before.wire.byPath.proposal).toBeGreaterThan(0);
    const again = await spawnCoordinator(['--config', config, '--data-dir', dir]);
    children.push(again);
    const after = await status(again.url);
    expect(after.iteration).toBe(last);
    expect(after.wire.bytesSent).toBe(before.wire.bytesSent);
    expect(after.wire.byPath).toEqual(before.wire.byPath);
  });

  it('refuses a bad job file, naming the file, the field and what was expected', async () => {
    const dir = await tempDir();
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ name: 'x', batchSize: 'big', codec: { name: 'zip' } }));
    const result = await runCli(['serve', '--config', file, '--port', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(file);
    expect(result.stderr).toMatch(/batchSize: .*expected number/i);
    expect(result.stderr).toMatch(/codec\.name: .*expected one of/i);
    expect(result.stdout).not.toContain('volunteer page');

    const inconsistent = join(dir, 'inconsistent.json');
    await writeFile(
      inconsistent,
      JSON.stringify({ name: 'x', cluster: { size: 4, redundancy: 9 } }),
    );
    const cross = await runCli(['serve', '--config', inconsistent, '--port', '0']);
    expect(cross.code).toBe(2);
    expect(cross.stderr).toMatch(/cluster\.redundancy: must be smaller than cluster\.size/);

    const broken = join(dir, 'broken.json');
    await writeFile(broken, '{ "name": ');
    const parse = await runCli(['serve', '--config', broken, '--port', '0']);
    expect(parse.code).toBe(2);
    expect(parse.stderr).toContain('not valid JSON');
  });

  it("exits 2 with commander's message for bad arguments, 0 for --help", async () => {
    const unknown = await runCli(['serve', '--no-such-option']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--no-such-option'/);
    const badValue = await runCli(['swarm', '--tabs', 'many']);
    expect(badValue.code).toBe(2);
    expect(badValue.stderr).toMatch(/--tabs/);
    const help = await runCli(['swarm', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--byzantine');
  });
});
