import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { missingKernels, selectBackend } from '../src/backend.ts';
import { conv2dFilterGradient } from '../src/wasm-conv-filter.ts';
import { buildModel, computeGradientAsync, modelTopologyJSON } from '@swarmgrad/model';

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

  it('never picks a backend lacking a kernel the model needs (wasm: depthwise conv gradients)', async () => {
    await tf.setBackend('cpu');
    const depthwise = tfl.sequential({
      layers: [
        tfl.layers.depthwiseConv2d({ inputShape: [8, 8, 2], kernelSize: 3, name: 'depthwise' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
      ],
    });
    const spec = specOf(depthwise, [8, 8, 2]);
    const model = buildModel(spec, 0);
    expect(missingKernels(model, 'wasm')).toContain('DepthwiseConv2dNativeBackpropFilter');
    expect(missingKernels(model, 'cpu')).toEqual([]);
    model.dispose();
    const choice = await selectBackend({ model: spec, steps: 1, force: 'wasm' });
    expect(choice.backend).toBe('cpu');
    expect(choice.trials.find((t) => t.backend === 'wasm')!.error).toMatch(
      /lacks kernel .*DepthwiseConv2dNativeBackpropFilter/,
    );
  });

  it('trains a convolutional model on wasm (its filter gradient is ours) as cpu does', async () => {
    await tf.setBackend('cpu');
    const conv = tfl.sequential({
      layers: [
        tfl.layers.conv2d({
          inputShape: [9, 9, 2],
          filters: 3,
          kernelSize: 3,
          strides: 2,
          padding: 'same',
          activation: 'relu',
          name: 'conv1',
        }),
        // linear activation: TF.js takes its fused path, whose gradient calls the kernel directly
        tfl.layers.conv2d({ filters: 4, kernelSize: 2, name: 'conv2' }),
        tfl.layers.flatten(),
        tfl.layers.dense({ units: 10, activation: 'softmax', name: 'out' }),
      ],
    });
    const spec = specOf(conv, [9, 9, 2]);
    const batch = 5;
    const xs = Float32Array.from({ length: batch * 9 * 9 * 2 }, (_, i) => Math.sin(i * 0.37));
    const labels = Uint8Array.from({ length: batch }, (_, i) => (i * 3) % 10);
    const gradients: Float32Array[] = [];
    for (const backend of ['cpu', 'wasm'] as const) {
      await tf.setBackend(backend);
      const model = buildModel(spec, 0);
      expect(missingKernels(model, backend)).toEqual([]);
      gradients.push((await computeGradientAsync(model, xs, labels, batch)).gradient);
      model.dispose();
    }
    const [cpu, wasm] = gradients as [Float32Array, Float32Array];
    expect(wasm.length).toBe(cpu.length);
    let scale = 0;
    for (const v of cpu) scale = Math.max(scale, Math.abs(v));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < cpu.length; i++)
      expect(Math.abs(wasm[i]! - cpu[i]!)).toBeLessThan(1e-4 * scale);
    const choice = await selectBackend({ model: spec, steps: 1, force: 'wasm' });
    expect(choice.backend).toBe('wasm');
  });

  it("computes the filter gradient as the cpu backend's kernel, for any shape, stride and pad", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          batch: fc.integer({ min: 1, max: 3 }),
          height: fc.integer({ min: 3, max: 9 }),
          width: fc.integer({ min: 3, max: 9 }),
          channels: fc.integer({ min: 1, max: 3 }),
          filters: fc.integer({ min: 1, max: 4 }),
          kernel: fc.integer({ min: 1, max: 3 }),
          stride: fc.integer({ min: 1, max: 2 }),
          pad: fc.constantFrom('valid' as const, 'same' as const, 1),
          seed: fc.integer({ min: 0, max: 1000 }),
        }),
        async (c) => {
          const xShape = [c.batch, c.height, c.width, c.channels] as const;
          const wShape = [c.kernel, c.kernel, c.channels, c.filters] as const;
          const filterGradient = async (backend: 'cpu' | 'wasm') => {
            await tf.setBackend(backend);
            return tf.tidy(() => {
              const wave = (n: number, f: number, shape: readonly number[]) =>
                tf.tensor(
                  Float32Array.from({ length: n }, (_, i) => Math.sin(i * f + c.seed)),
                  [...shape],
                );
              const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
              const x = wave(size(xShape), 0.71, xShape) as tf.Tensor4D;
              const w = wave(size(wShape), 0.3, wShape) as tf.Tensor4D;
              const loss = (filter: tf.Tensor) => {
                const y = tf.conv2d(x, filter as tf.Tensor4D, c.stride, c.pad);
                return tf.sum(tf.mul(y, wave(y.size, 1.3, y.shape)));
              };
              return tf.grad(loss)(w).dataSync() as Float32Array;
            });
          };
          const cpu = await filterGradient('cpu');
          const wasm = await filterGradient('wasm');
          expect(wasm.length).toBe(cpu.length);
          for (let i = 0; i < cpu.length; i++) expect(wasm[i]).toBeCloseTo(cpu[i]!, 3);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('refuses NCHW input instead of answering wrongly', () => {
    expect(() =>
      conv2dFilterGradient(new Float32Array(16), [1, 1, 4, 4], new Float32Array(4), {
        strides: 1,
        pad: 'valid',
        dataFormat: 'NCHW',
        filterShape: [3, 3, 1, 1],
      }),
    ).toThrow(/NHWC/);
  });
});

/** A job's model spec for a Keras-style topology. */
function specOf(model: tfl.Sequential, inputShape: number[]) {
  const spec = {
    topology: modelTopologyJSON(model) as Record<string, unknown>,
    inputShape,
    classes: 10,
  };
  model.dispose();
  return spec;
}
