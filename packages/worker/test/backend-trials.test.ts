import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  backendOrder,
  trialCandidates,
  type BackendName,
  type BackendTrial,
} from '../src/backend.ts';

/** A trial runner that answers from a table and records what it was asked to time. */
function runner(outcomes: Partial<Record<BackendName, number | string>>) {
  const asked: BackendName[] = [];
  const trial = async (backend: BackendName): Promise<BackendTrial> => {
    asked.push(backend);
    const outcome = outcomes[backend];
    return typeof outcome === 'number'
      ? { backend, msPerStep: outcome }
      : { backend, error: outcome ?? 'not registered in this build' };
  };
  return { asked, trial };
}

describe('software-rendered GPU backends are timed only when needed', () => {
  it('skips a fallback adapter and SwiftShader WebGL when wasm runs the job, and says why', async () => {
    const { asked, trial } = runner({ webgpu: 280, webgl: 50, wasm: 21, cpu: 300 });
    const software = new Map<BackendName, string>([
      ['webgpu', 'WebGPU fallback adapter'],
      ['webgl', 'ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device (Subzero)), SwiftShader driver)'],
    ]);
    const trials = await trialCandidates(backendOrder, software, trial);
    expect(asked).toEqual(['wasm', 'cpu']);
    expect(trials.map((t) => t.backend)).toEqual(['webgpu', 'webgl', 'wasm', 'cpu']);
    expect(trials[0]).toEqual({
      backend: 'webgpu',
      skipped: 'software renderer (WebGPU fallback adapter), not timed: wasm runs this job',
    });
    expect(trials[1]!.skipped).toMatch(/SwiftShader.*not timed: wasm runs this job/);
    expect(trials[1]!.msPerStep).toBeUndefined();
  });

  it('times the software renderers when only cpu can run the job (wasm lacks a kernel)', async () => {
    const { asked, trial } = runner({
      webgpu: 900,
      webgl: 120,
      wasm: 'lacks kernel DepthwiseConv2dNativeBackpropFilter',
      cpu: 400,
    });
    const software = new Map<BackendName, string>([
      ['webgpu', 'WebGPU fallback adapter'],
      ['webgl', 'SwiftShader'],
    ]);
    const trials = await trialCandidates(backendOrder, software, trial);
    expect(asked).toEqual(['wasm', 'cpu', 'webgpu', 'webgl']);
    expect(trials.map((t) => [t.backend, t.msPerStep])).toEqual([
      ['webgpu', 900],
      ['webgl', 120],
      ['wasm', undefined],
      ['cpu', 400],
    ]);
    expect(trials.every((t) => t.skipped === undefined)).toBe(true);
  });

  it('times a hardware GPU as before, and names it as what runs the job', async () => {
    const { asked, trial } = runner({ webgpu: 400, webgl: 4, wasm: 21, cpu: 300 });
    const software = new Map<BackendName, string>([['webgpu', 'WebGPU fallback adapter']]);
    const trials = await trialCandidates(backendOrder, software, trial);
    expect(asked).toEqual(['webgl', 'wasm', 'cpu']);
    expect(trials.find((t) => t.backend === 'webgl')!.msPerStep).toBe(4);
    expect(trials[0]!.skipped).toMatch(/not timed: webgl runs this job/);
  });

  it('for any renderers and outcomes: software ones are timed exactly when nothing but cpu works', async () => {
    const outcome = fc.oneof(fc.double({ min: 0.1, max: 1000, noNaN: true }), fc.constant('fails'));
    await fc.assert(
      fc.asyncProperty(
        fc.subarray([...backendOrder], { minLength: 1 }),
        fc.subarray(['webgpu', 'webgl'] as BackendName[]),
        fc.record({ webgpu: outcome, webgl: outcome, wasm: outcome, cpu: outcome }),
        async (candidates, softwareBackends, outcomes) => {
          const software = new Map(softwareBackends.map((b) => [b, `${b} renderer`] as const));
          const { asked, trial } = runner(outcomes);
          const trials = await trialCandidates(candidates, software, trial);
          expect(trials.map((t) => t.backend)).toEqual(candidates);
          const hardwareWorks = candidates.some(
            (b) => !software.has(b) && b !== 'cpu' && typeof outcomes[b] === 'number',
          );
          for (const t of trials) {
            const timed = asked.includes(t.backend);
            expect(timed).toBe(!software.has(t.backend) || !hardwareWorks);
            expect(t.skipped !== undefined).toBe(!timed);
          }
          expect(new Set(asked).size).toBe(asked.length);
        },
      ),
    );
  });
});
