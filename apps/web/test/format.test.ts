/** How both pages name a job's model and data (apps/web/src/lib/format.ts). */
import { readFileSync } from 'node:fs';
import { jobSpecSchema } from '@swarmgrad/protocol';
import { describe, expect, it } from 'vitest';
import { describeDataset, describeModel } from '../src/lib/format.ts';

function job(file: string) {
  const url = new URL(`../../../examples/jobs/${file}`, import.meta.url);
  return jobSpecSchema.parse(JSON.parse(readFileSync(url, 'utf8')));
}

describe('describeModel', () => {
  it('names a preset', () => {
    expect(describeModel(job('mnist-mlp.json').model)).toBe('mlp-784-128-10');
  });

  it('names a topology and counts its layers by kind', () => {
    expect(describeModel(job('mnist-mlp-1m.json').model)).toBe(
      'mlp-784-1280-10 (TF.js: Dense ×2; 10 classes)',
    );
    expect(describeModel(job('mnist-cnn.json').model)).toBe(
      'cnn-mnist (TF.js: Conv2D ×2, MaxPooling2D ×2, Flatten, Dense ×2; 10 classes)',
    );
  });

  it('falls back when the topology has no name or layers it can read', () => {
    expect(describeModel({ topology: { class_name: 'Sequential' }, classes: 3 })).toBe(
      'custom TF.js model (3 classes)',
    );
    expect(
      describeModel({
        topology: { config: { name: 'x', layers: [{ class_name: '<b>' }, null, 7] } },
        classes: 2,
      }),
    ).toBe('x (2 classes)');
  });
});

describe('describeDataset', () => {
  it('gives the preset with its split sizes, or the manifest', () => {
    expect(describeDataset(job('mnist-mlp-1m.json').dataset)).toBe(
      'MNIST · 8,000 train / 2,000 held-out',
    );
    expect(describeDataset({ manifestUrl: 'packs/digits' })).toBe('packs/digits');
  });

  it('describes a pack by what the coordinator loaded: name, split and shape', () => {
    const data = { name: 'digits', train: 6000, heldOut: 1000, features: 784, classes: 10 };
    expect(describeDataset({ manifestUrl: 'packs/digits' }, data)).toBe(
      'digits · 6,000 train / 1,000 held-out · 784 features, 10 classes (packs/digits)',
    );
  });
});
