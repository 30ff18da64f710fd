/**
 * The iteration signing key (signing-key.ts) under garbage-collection stress: a key made and
 * exported while V8 collects every few allocations never hangs its process. Child processes
 * (test/support/keys-under-gc.cjs) run the module bundled as CommonJS with `--gc-interval`:
 * with keys straight from generateKeyPairSync, 7 of these 12 runs hung (Node 20 deadlocks when
 * a collected key-generation job shares the lock an export holds).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { buildSync } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSigningKey, publicKeyOf } from '../src/signing-key.ts';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./support/keys-under-gc.cjs', import.meta.url));
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swarmgrad-signing-key-'));
  bundle = join(dir, 'signing-key.cjs');
  buildSync({
    entryPoints: [fileURLToPath(new URL('../src/signing-key.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile: bundle,
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('iteration signing keys', () => {
  it('are Ed25519, distinct, and their public half is 32 raw bytes in base64url', () => {
    const a = newSigningKey();
    const b = newSigningKey();
    expect(a.asymmetricKeyType).toBe('ed25519');
    expect(publicKeyOf(a)).not.toBe(publicKeyOf(b));
    expect(Buffer.from(publicKeyOf(a), 'base64url')).toHaveLength(32);
  });

  it('never hang their process when garbage is collected during an export', async () => {
    const runs: { interval: number; shift: number }[] = [];
    for (const interval of [7, 13, 50])
      for (const shift of [0, 1, 2, 3]) runs.push({ interval, shift });
    for (const { interval, shift } of runs) {
      // a hang is killed at the bound and fails the run
      const { stdout } = await run(
        process.execPath,
        [`--gc-interval=${interval}`, child, bundle, '1000', String(shift)],
        { timeout: 20_000, killSignal: 'SIGKILL' },
      );
      expect(JSON.parse(stdout)).toEqual({ keys: 1000, chars: 1000 * 5 * 43, shift });
    }
  }, 300_000);
});
