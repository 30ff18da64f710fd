/**
 * The served coordinator's launcher: a coordinator that exits while starting fails the launch at
 * once with its output (it used to be polled for the full 90 s start timeout), and `until`
 * gives up at once only when told to.
 */
import { describe, expect, it } from 'vitest';
import { GiveUp, startCoordinator, until } from '../src/coordinator.ts';

describe('until', () => {
  it('treats a probe error as not yet, and GiveUp as final', async () => {
    let calls = 0;
    await expect(
      until(
        () => {
          calls++;
          if (calls < 3) throw new Error('not yet');
          return calls;
        },
        'three calls',
        5_000,
        1,
      ),
    ).resolves.toBe(3);
    const started = Date.now();
    await expect(
      until(
        () => {
          throw new GiveUp('gone');
        },
        'nothing',
        5_000,
      ),
    ).rejects.toThrow('gone');
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('startCoordinator', () => {
  it('fails at once, with the coordinator’s own words, when it exits while starting', async () => {
    const started = Date.now();
    await expect(
      startCoordinator({ job: { name: 'missing-pack', dataset: { manifestUrl: 'no/such/pack' } } }),
    ).rejects.toThrow(/exited with 2[\s\S]*no\/such\/pack/);
    // the CLI's start (its build check, Node, the job) takes seconds, not the 90 s start timeout
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 90_000);
});
