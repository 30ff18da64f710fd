/**
 * The job gallery (examples/jobs/, issue 18 item 2): every file is a valid job the coordinator
 * would accept, and the CNN on MNIST builds with the parameter count its description gives
 * and is refused by the wasm backend's trial (no Conv2DBackpropFilter kernel, issue 18 item 3)
 * while cpu trains it. Training it to its target is a swarm run (`swarmgrad swarm --serve
 * examples/jobs/mnist-cnn.json`), too slow for a unit test: 40 SGD steps on the Node cpu
 * backend alone take minutes here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { describeIssues, jobSpecSchema, type JobSpec } from '@swarmgrad/protocol';
import { missingKernels, selectBackend } from '@swarmgrad/worker';
import { buildModel, parameterCount } from '@swarmgrad/worker/model';
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
    for (const file of files) expect(load(file).name).toBe(file.replace(/\.json$/, ''));
  });

  it('mnist-cnn: 27,690 parameters, not trained on wasm, cpu takes it', async () => {
    const job = load('mnist-cnn.json');
    await tf.setBackend('cpu');
    const model = buildModel(job.model, 0);
    try {
      expect(parameterCount(model)).toBe(27_690);
      expect(missingKernels(model, 'wasm')).toContain('Conv2DBackpropFilter');
      const choice = await selectBackend({ model: job.model, steps: 1 });
      expect(choice.backend).toBe('cpu');
      expect(choice.reason).toMatch(/wasm: lacks kernel .*Conv2DBackpropFilter/);
      expect(tf.getBackend()).toBe('cpu');
      // the trial's one step on cpu gave a finite, positive loss and a timing
      expect(choice.trials.find((t) => t.backend === 'cpu')!.msPerStep).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
  }, 60_000);
});
