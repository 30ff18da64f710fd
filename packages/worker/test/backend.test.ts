import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { describe, expect, it } from 'vitest';
import { missingKernels, selectBackend } from '../src/backend.ts';
import { buildModel, modelTopologyJSON } from '@swarmgrad/model';

describe('backend selection (Node: wasm and cpu)', () => {
  it('times both on the job model and keeps the faster one', async () => {
    const choice = await selectBackend({ model: { preset: 'softmax-784-10' }, steps: 2 });
    expect(choice.trials.map((t) => t.backend)).toEqual(['wasm', 'cpu']);
    const timed = choice.trials.filter((t) => t.msPerStep !== undefined);
    expect(timed).toHaveLength(2);
    const fastest = [...timed].sort((a, b) => a.msPerStep! - b.msPerStep!)[0]!;
    expect(choice.backend).toBe(fastest.backend);
    expect(tf.getBackend()).toBe(choice.backend);
    expect(choice.reason).toMatch(/fastest/);
    expect(choice.fallbackAdapter).toBeUndefined();
    expect(choice.threaded).toBe(false);
  });

  it('never picks a backend lacking a kernel the model needs (wasm: Conv2DBackpropFilter)', async () => {
    await tf.setBackend('cpu');
    const conv = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 2, kernelSize: 3, name: 'conv' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
      ],
    });
    const spec = {
      topology: modelTopologyJSON(conv) as Record<string, unknown>,
      inputShape: [8, 8, 1],
      classes: 10,
    };
    conv.dispose();
    const model = buildModel(spec, 0);
    expect(missingKernels(model, 'wasm')).toContain('Conv2DBackpropFilter');
    expect(missingKernels(model, 'cpu')).toEqual([]);
    model.dispose();
    const choice = await selectBackend({ model: spec, steps: 1, force: 'wasm' });
    expect(choice.backend).toBe('cpu');
    expect(choice.trials.find((t) => t.backend === 'wasm')!.error).toMatch(/Conv2DBackpropFilter/);
  });
});
