import { describe, expect, it } from 'vitest';
import { estimateCurvature } from '../src/curvature.ts';

describe('estimateCurvature', () => {
  it('is (1/K)·λmax(E[x̃x̃ᵀ]) for x̃ = [x, 1]', () => {
    // every sample is (2, 0): E[x̃x̃ᵀ] = [[4,0,2],[0,0,0],[2,0,1]], λmax = 5
    const xs = new Float32Array([2, 0, 2, 0, 2, 0, 2, 0]);
    expect(estimateCurvature(xs, 4, 10)).toBeCloseTo(0.5, 6);
    // two orthogonal directions, the larger wins: samples (3,0) and (0,1) → λmax of
    // [[4.5,0,1.5],[0,0.5,0.5],[1.5,0.5,1]]
    const mixed = new Float32Array([3, 0, 0, 1]);
    const m = [
      [4.5, 0, 1.5],
      [0, 0.5, 0.5],
      [1.5, 0.5, 1],
    ];
    let v = [1, 1, 1];
    for (let i = 0; i < 500; i++) {
      const w = m.map((row) => row.reduce((a, x, j) => a + x * v[j]!, 0));
      const n = Math.hypot(...w);
      v = w.map((x) => x / n);
    }
    const lambda = Math.hypot(...m.map((row) => row.reduce((a, x, j) => a + x * v[j]!, 0)));
    expect(estimateCurvature(mixed, 2, 2, 200)).toBeCloseTo(lambda / 2, 6);
  });
});
