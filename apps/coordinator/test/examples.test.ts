/**
 * The job gallery (examples/jobs/, issue 18 item 2): every file is a valid job the coordinator
 * would accept, and the CNN on MNIST builds with the parameter count its description gives and
 * passes the backend trial on wasm and cpu (wasm's missing Conv2DBackpropFilter is the worker's
 * own, issue 18 item 3). Training it to its target is a swarm run (`swarmgrad swarm --serve
 * examples/jobs/mnist-cnn.json`, about six minutes: docs/benchmarks.md), too slow here.
 *
 * mnist-mlp-1m is the gallery's model of at least 1,000,000 parameters: its one-bit update
 * frames span several 64 KiB data-channel chunks and its fp32 frames are over 4 MB. The
 * 4-tab swarm that trains it to its target is e2e/big-job.spec.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { encodeToFrame, getCodec } from '@swarmgrad/core';
import {
  chunkFrame,
  describeIssues,
  jobIdOf,
  jobSpecSchema,
  MAX_CHUNK_BYTES,
  type JobSpec,
} from '@swarmgrad/protocol';
import { missingKernels, selectBackend } from '@swarmgrad/worker';
import { buildModel, parameterCount } from '@swarmgrad/model';
import { describe, expect, it } from 'vitest';

const dir = fileURLToPath(new URL('../../../examples/jobs/', import.meta.url));

function load(file: string): JobSpec {
  const parsed = jobSpecSchema.safeParse(JSON.parse(readFileSync(join(dir, file), 'utf8')));
  if (!parsed.success) throw new Error(`${file}: ${describeIssues(parsed.error).join('; ')}`);
  return parsed.data;
}

describe('examples/jobs', () => {
  it('every job file is valid and named after its file', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toContain('mnist-cnn.json');
    expect(files).toContain('mnist-mlp.json');
    expect(files).toContain('mnist-mlp-1m.json');
    for (const file of files) expect(load(file).name).toBe(file.replace(/\.json$/, ''));
  });

  it('mnist-cnn: 27,690 parameters, wasm and cpu both take it', async () => {
    const job = load('mnist-cnn.json');
    await tf.setBackend('cpu');
    const model = buildModel(job.model, 0);
    try {
      expect(parameterCount(model)).toBe(27_690);
      expect(missingKernels(model, 'wasm')).toEqual([]);
      expect(missingKernels(model, 'cpu')).toEqual([]);
      const choice = await selectBackend({ model: job.model, steps: 1 });
      expect(tf.getBackend()).toBe(choice.backend);
      // each trial's one step gave a finite, positive loss and a timing
      for (const backend of ['wasm', 'cpu']) {
        expect(choice.trials.find((t) => t.backend === backend)!.msPerStep).toBeGreaterThan(0);
      }
    } finally {
      model.dispose();
    }
  }, 60_000);

  it('mnist-mlp-1m: 1,017,610 parameters, one-bit frames of 3 chunks, wasm and cpu take it', async () => {
    const job = load('mnist-mlp-1m.json');
    expect(job.codec.name).toBe('one-bit');
    await tf.setBackend('cpu');
    const model = buildModel(job.model, 0);
    try {
      const d = parameterCount(model);
      expect(d).toBe(1_017_610);
      expect(d).toBeGreaterThanOrEqual(1_000_000);
      expect(missingKernels(model, 'wasm')).toEqual([]);
      expect(missingKernels(model, 'cpu')).toEqual([]);
      const header = { jobId: jobIdOf(job.name), iteration: 1, round: 0, senderSlot: 0 };
      const update = new Float32Array(d).fill(1e-3);
      const oneBit = encodeToFrame(
        getCodec('one-bit').createEncoder(d, { blockSize: job.codec.blockSize, seed: 1 }),
        update,
        header,
      );
      expect(oneBit.byteLength).toBeGreaterThan(2 * MAX_CHUNK_BYTES);
      expect(chunkFrame(oneBit, 0)).toHaveLength(3);
      // ≤ 1.1 bits per parameter on the wire, chunk headers included
      expect((8 * 3 * 16 + 8 * oneBit.byteLength) / d).toBeLessThanOrEqual(1.1);
      const fp32 = encodeToFrame(getCodec('fp32').createEncoder(d, { seed: 1 }), update, header);
      expect(fp32.byteLength).toBeGreaterThanOrEqual(4_000_000);
    } finally {
      model.dispose();
    }
  }, 60_000);
});
