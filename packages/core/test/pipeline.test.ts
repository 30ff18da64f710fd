import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LocalProgress } from '../src/pipeline.ts';

const D = 6;

type Op =
  | { kind: 'step'; partition: number; delta: number[] }
  | { kind: 'base'; iteration: number; values: number[] }
  | { kind: 'take' };

const vector = fc.array(fc.integer({ min: -8, max: 8 }), { minLength: D, maxLength: D });
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('step' as const), partition: fc.nat({ max: 2 }), delta: vector }),
  fc.record({ kind: fc.constant('base' as const), iteration: fc.nat({ max: 12 }), values: vector }),
  fc.record({ kind: fc.constant('take' as const) }),
);

describe('LocalProgress (a pipelined tab, issue 16)', () => {
  it('ends every progress on the newest base exactly once, whatever the order, repeats and gaps of the bases', () => {
    fc.assert(
      fc.property(fc.nat({ max: 4 }), fc.array(op, { maxLength: 60 }), (start, ops) => {
        const partitions = 3;
        // integer-valued vectors keep float32 arithmetic exact, so equality is exact
        const base0 = Float32Array.from({ length: D }, (_, i) => i);
        const progress = new LocalProgress(base0, start, partitions);
        let newest = { iteration: start, values: Array.from(base0) };
        // the reference: per partition, the sum of the steps since the last take
        let pending = Array.from({ length: partitions }, () => new Array<number>(D).fill(0));
        const totalTaken = Array.from({ length: partitions }, () => new Array<number>(D).fill(0));
        const totalStepped = Array.from({ length: partitions }, () => new Array<number>(D).fill(0));
        for (const o of ops) {
          if (o.kind === 'step') {
            const x = progress.parameters(o.partition);
            for (let i = 0; i < D; i++) {
              x[i]! += o.delta[i]!;
              pending[o.partition]![i]! += o.delta[i]!;
              totalStepped[o.partition]![i]! += o.delta[i]!;
            }
            progress.recordStep(o.partition);
          } else if (o.kind === 'base') {
            const applied = progress.rebase(Float32Array.from(o.values), o.iteration);
            expect(applied).toBe(o.iteration > newest.iteration);
            if (applied) newest = { iteration: o.iteration, values: o.values };
          } else {
            const taken = progress.take(newest.iteration + 1);
            for (let j = 0; j < partitions; j++) {
              expect(Array.from(taken.updates[j]!)).toEqual(pending[j]);
              for (let i = 0; i < D; i++) totalTaken[j]![i]! += pending[j]![i]!;
            }
            pending = pending.map((p) => p.map(() => 0));
          }
          // invariant: x_j = newest base + progress since the last take, o_j = newest base
          // (after a take o_j = x_j, which is that too when nothing was stepped since)
          expect(progress.baseIteration).toBe(newest.iteration);
          for (let j = 0; j < partitions; j++) {
            const x = Array.from(progress.parameters(j));
            const o = Array.from(progress.origin(j));
            for (let i = 0; i < D; i++) expect(x[i]! - o[i]!).toBe(pending[j]![i]! + 0);
          }
        }
        // nothing stepped is lost or counted twice: taken + pending = stepped
        for (let j = 0; j < partitions; j++) {
          for (let i = 0; i < D; i++) {
            expect(totalTaken[j]![i]! + pending[j]![i]!).toBe(totalStepped[j]![i]!);
          }
        }
      }),
    );
  });

  it('places x on the newest base plus the progress: a delta applied twice or skipped would show', () => {
    const progress = new LocalProgress(new Float32Array([0, 0]), 0, 1);
    progress.parameters(0).set([1, 2]); // one step of progress (+1, +2)
    progress.recordStep(0);
    const base1 = new Float32Array([10, 10]);
    expect(progress.rebase(base1, 1)).toBe(true);
    expect(progress.rebase(base1, 1)).toBe(false); // the same base again: nothing
    expect(Array.from(progress.parameters(0))).toEqual([11, 12]);
    // iteration 2 never arrives here; 3 does: x follows base 3, not base 1 + two deltas
    expect(progress.rebase(new Float32Array([30, 40]), 3)).toBe(true);
    expect(progress.rebase(new Float32Array([99, 99]), 2)).toBe(false); // late and older
    expect(Array.from(progress.parameters(0))).toEqual([31, 42]);
    expect(Array.from(progress.origin(0))).toEqual([30, 40]);
  });

  it('tags a register with the staleness of its oldest step, the mean delay of its steps, and counts the fewest steps', () => {
    const progress = new LocalProgress(new Float32Array(2), 4, 2);
    expect(progress.take(4)).toMatchObject({ steps: 0, staleness: 0, stepDelay: 0 });
    progress.recordStep(0);
    progress.recordStep(progress.nextPartition());
    expect(progress.nextPartition()).toBe(0);
    progress.recordStep(0);
    progress.rebase(new Float32Array(2), 5);
    progress.rebase(new Float32Array(2), 6);
    progress.recordStep(1);
    // first step taken on base 4, published as iteration 7: three iterations stale; three
    // steps on base 4 and one on base 6: a mean delay of (3 + 3 + 3 + 1) / 4
    expect(progress.take(7)).toMatchObject({ steps: 2, staleness: 3, stepDelay: 2.5 });
    // the next progress starts on base 6
    progress.recordStep(0);
    progress.recordStep(1);
    expect(progress.take(7)).toMatchObject({ steps: 1, staleness: 1, stepDelay: 1 });
    // taken on the base its steps ran on: fresh, whatever came before
    progress.recordStep(0);
    progress.rebase(new Float32Array(2), 7);
    progress.recordStep(0);
    progress.recordStep(1);
    progress.recordStep(1);
    expect(progress.take(7)).toMatchObject({ steps: 2, staleness: 1, stepDelay: 0.25 });
    progress.recordStep(0);
    expect(progress.take(7)).toMatchObject({ staleness: 0, stepDelay: 0 });
  });

  it('never tags a mean step delay above the staleness or below zero (any steps and rebases)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant('step' as const), fc.integer({ min: 1, max: 3 })), {
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 3 }),
        (events, ahead) => {
          const progress = new LocalProgress(new Float32Array(1), 0, 1);
          const bases: number[] = [];
          for (const event of events) {
            if (event === 'step') {
              progress.recordStep(0);
              bases.push(progress.baseIteration);
            } else progress.rebase(new Float32Array(1), progress.baseIteration + event);
          }
          const iteration = progress.baseIteration + ahead;
          const taken = progress.take(iteration);
          // no steps: as behind as the base it holds
          const expected =
            bases.length === 0
              ? ahead
              : bases.reduce((sum, base) => sum + (iteration - base), 0) / bases.length;
          expect(taken.stepDelay).toBeCloseTo(Math.min(taken.staleness, expected), 9);
          expect(taken.stepDelay).toBeGreaterThanOrEqual(0);
          expect(taken.stepDelay).toBeLessThanOrEqual(taken.staleness);
        },
      ),
    );
  });
});
