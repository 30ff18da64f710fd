/**
 * The pipelined step loop (pipeline-loop.ts) against a scripted host: which registers leave it,
 * when it stops stepping, what it drops. The host's "step" adds 1 to every parameter, so a
 * register's update says how many steps it holds.
 */
import { describe, expect, it } from 'vitest';
import {
  PIPELINE_MAX_STEPS_FACTOR,
  PipelineLoop,
  type PipelineHost,
  type PipelineNow,
  type PipelineRegister,
} from '../src/pipeline-loop.ts';
import type { LocalPartition } from '../src/trainer.ts';

const D = 4;

function partition(count: number, local = 0): LocalPartition {
  return {
    local,
    coefficient: 1,
    global: [local],
    xs: new Float32Array(count * 2),
    labels: new Uint8Array(count),
    count,
  };
}

interface Script {
  now: PipelineNow | undefined;
  registers: PipelineRegister[];
  steps: number;
  dropped: number;
  /** Runs after each step (before the next): the test moves the iteration here. */
  afterStep?: (steps: number) => void;
}

function scriptedHost(script: Script): PipelineHost {
  return {
    current: () => script.now,
    step: async (x) => {
      for (let i = 0; i < x.length; i++) x[i]! += 1;
      return { loss: 1, examples: 8, ms: 1 };
    },
    pace: async () => {
      script.steps++;
      script.afterStep?.(script.steps);
    },
    publish: (register) => void script.registers.push(register),
    staleDropped: () => void script.dropped++,
  };
}

function now(iteration: number, localSteps: number, stalenessLimit = 2): PipelineNow {
  return {
    base: new Float32Array(D),
    iteration,
    settings: { steps: localSteps, batchSize: 8, learningRate: 0.1, elastic: 0, momentum: 0 },
    stalenessLimit,
  };
}

describe('PipelineLoop', () => {
  it('sends one register per iteration, once every partition holds L steps, and stops at the step budget', async () => {
    const script: Script = { now: now(1, 2), registers: [], steps: 0, dropped: 0 };
    const loop = new PipelineLoop([partition(5, 0), partition(5, 1)], scriptedHost(script), {
      dimension: D,
      momentum: false,
    });
    await loop.run();
    // the register of iteration 1 left after 2 steps a partition; then the loop went on until
    // the budget of the next register was spent, and returned
    expect(script.registers.map((r) => r.iteration)).toEqual([1]);
    expect(script.registers[0]!.steps).toBe(2);
    expect([...script.registers[0]!.updates[0]!]).toEqual([2, 2, 2, 2]);
    expect(script.steps).toBe(2 * 2 + 2 * PIPELINE_MAX_STEPS_FACTOR * 2);
    expect(loop.tookFor(1)).toBe(true);
    // running again without a new iteration neither steps nor sends
    await loop.run();
    expect(script.steps).toBe(2 * 2 + 2 * PIPELINE_MAX_STEPS_FACTOR * 2);
    // the next iteration takes everything stepped meanwhile, at once
    script.now = now(2, 2);
    script.afterStep = () => void (script.now = undefined);
    await loop.run();
    expect(script.registers.map((r) => r.iteration)).toEqual([1, 2]);
    expect(script.registers[1]!.steps).toBe(PIPELINE_MAX_STEPS_FACTOR * 2);
    expect(script.registers[1]!.staleness).toBe(1);
    expect(script.registers[1]!.stepDelay).toBe(1);
  });

  it("tags a register with its steps' mean delay: the steps before the new base are behind, the rest fresh", async () => {
    const script: Script = { now: now(1, 4), registers: [], steps: 0, dropped: 0 };
    // iteration 1's register leaves after 4 steps; 1 more step on base 1, then iteration 2
    // opens and 3 steps run on its base before the register of 2 is due (4 steps)
    script.afterStep = (steps) => {
      if (steps === 5) script.now = now(2, 4);
      if (steps === 8) script.now = undefined;
    };
    const loop = new PipelineLoop([partition(5)], scriptedHost(script), {
      dimension: D,
      momentum: false,
    });
    await loop.run();
    script.now = now(2, 4);
    script.afterStep = undefined;
    await loop.run();
    expect(script.registers.map((r) => [r.iteration, r.steps, r.staleness, r.stepDelay])).toEqual([
      [1, 4, 0, 0],
      [2, 4, 1, 0.25],
    ]);
  });

  it('drops progress staler than the limit and starts again on the newest base', async () => {
    const script: Script = { now: now(1, 1, 0), registers: [], steps: 0, dropped: 0 };
    // iteration 1's first step; the iteration moves to 3 before the register is due
    script.afterStep = (steps) => {
      if (steps === 1) script.now = now(3, 3, 0);
      if (steps === 4) script.now = undefined;
    };
    const loop = new PipelineLoop([partition(5)], scriptedHost(script), {
      dimension: D,
      momentum: false,
    });
    await loop.run();
    // the progress holding iteration 1's step was 2 iterations stale at iteration 3: dropped;
    // the steps after it, all on base 3, make a fresh register
    expect(script.dropped).toBe(1);
    expect(script.registers).toHaveLength(0);
    script.now = now(3, 3, 0);
    script.afterStep = undefined;
    await loop.run();
    expect(script.registers.map((r) => [r.iteration, r.staleness, r.steps])).toEqual([[3, 0, 3]]);
  });

  it('takes no step on a partition without data and sends it as zero; a stopped loop steps no more', async () => {
    const script: Script = { now: now(1, 1), registers: [], steps: 0, dropped: 0 };
    const loop = new PipelineLoop([partition(0, 0), partition(3, 1)], scriptedHost(script), {
      dimension: D,
      momentum: false,
    });
    script.afterStep = (steps) => {
      if (steps === 1) loop.stop();
    };
    await loop.run();
    expect(script.registers).toHaveLength(0);
    // stopped after its first step: nothing more happens, even with work to do
    await loop.run();
    expect(script.steps).toBe(1);

    const empty: Script = { now: now(4, 1), registers: [], steps: 0, dropped: 0 };
    await new PipelineLoop([partition(0)], scriptedHost(empty), {
      dimension: D,
      momentum: false,
    }).run();
    expect(empty.steps).toBe(0);
    expect(empty.registers.map((r) => [r.iteration, [...r.updates[0]!]])).toEqual([
      [4, [0, 0, 0, 0]],
    ]);
  });
});
