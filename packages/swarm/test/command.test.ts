import { describe, expect, it } from 'vitest';
import { planSwarm, summaryLine, UsageError, type SwarmCommandOptions } from '../src/command.ts';
import type { SwarmSummary } from '../src/watch.ts';
import { checkSwarmOptions } from '../src/swarm.ts';
import { buildProgram, type SwarmCliOptions } from '@swarmgrad/coordinator/cli';
import { faultModes } from '@swarmgrad/protocol';

/** What `swarmgrad swarm <args>` hands its action (the action itself is replaced). */
function parse(args: string[]): SwarmCliOptions {
  const program = buildProgram().exitOverride();
  const swarm = program.commands.find((c) => c.name() === 'swarm')!;
  let seen: SwarmCliOptions | undefined;
  swarm.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  swarm.action((opts: SwarmCliOptions) => {
    seen = opts;
  });
  program.parse(['node', 'swarmgrad', 'swarm', ...args]);
  return seen!;
}

describe('swarmgrad swarm arguments', () => {
  it('names every fault mode in the help of --attack', () => {
    const swarm = buildProgram().commands.find((c) => c.name() === 'swarm')!;
    const help = swarm.helpInformation().replace(/\s+/g, ' ');
    for (const mode of faultModes) expect(help).toContain(mode);
  });

  it('parses every option of the issue', () => {
    const o = parse([
      '--url',
      'http://10.0.0.2:8080',
      '--tabs',
      '6',
      '--churn',
      '0.25',
      '--rejoin',
      '--byzantine',
      '1',
      '--attack',
      'sign-flip',
      '--until-accuracy',
      '0.9',
      '--max-iterations',
      '300',
      '--timeout',
      '600',
      '--json',
    ]);
    expect(o).toMatchObject({
      url: 'http://10.0.0.2:8080',
      tabs: 6,
      churn: 0.25,
      rejoin: true,
      byzantine: 1,
      attack: 'sign-flip',
      untilAccuracy: 0.9,
      maxIterations: 300,
      timeout: 600,
      json: true,
    });
    const plan = planSwarm(o as SwarmCommandOptions);
    expect(plan.launch).toMatchObject({
      url: 'http://10.0.0.2:8080',
      tabs: 6,
      churn: { rate: 0.25, rejoin: true },
      byzantine: { count: 1, attack: 'sign-flip' },
    });
    expect(plan.target).toEqual({ accuracy: 0.9, maxIterations: 300, timeoutSeconds: 600 });
  });

  it('--serve takes an optional job file and replaces --url', () => {
    expect(parse(['--serve']).serve).toBe(true);
    expect(parse(['--serve', 'job.json']).serve).toBe('job.json');
    expect(planSwarm(parse(['--serve', 'job.json']) as SwarmCommandOptions).launch.serve).toEqual({
      job: 'job.json',
    });
  });

  it('--no-turn leaves TURN out of the network lab', () => {
    const plan = (args: string[]) => planSwarm(parse(args) as SwarmCommandOptions).launch;
    expect(plan(['--serve', '--network', 'symmetric-nat', '--no-turn']).network).toMatchObject({
      profile: 'symmetric-nat',
      turn: false,
    });
    expect(plan(['--serve', '--network', 'symmetric-nat']).network).not.toHaveProperty('turn');
  });

  it('refuses bad numbers at parse time', () => {
    expect(() => parse(['--serve', '--tabs', '0'])).toThrow(/--tabs/);
    expect(() => parse(['--serve', '--tabs', 'x'])).toThrow(/--tabs/);
    expect(() => parse(['--serve', '--until-accuracy', '1.5'])).toThrow();
    expect(() => parse(['--serve', '--churn', '-1'])).toThrow();
  });

  it('refuses conflicting or incomplete options with a clear message', () => {
    const bad = (args: string[], message: RegExp) => {
      let error: unknown;
      try {
        planSwarm(parse(args) as SwarmCommandOptions);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toMatch(message);
    };
    bad([], /--url .* or --serve/);
    bad(['--url', 'http://10.0.0.2:8080', '--serve'], /exclude each other/);
    bad(['--serve', '--byzantine', '1'], /--attack/);
    bad(['--serve', '--byzantine', '1', '--attack', 'flip'], /one of sign-flip/);
    bad(['--serve', '--rejoin'], /--churn/);
    bad(['--serve', '--tabs', '2', '--byzantine', '3', '--attack', 'nan'], /byzantine/);
    bad(['--url', 'not a url'], /not a URL/);
    bad(['--url', 'http://10.0.0.2:8080,ftp://10.0.0.3'], /http\(s\)/);
    bad(['--serve', '--backend', 'tpu'], /backend/);
  });

  it('a lab shares homes only among a positive whole number of tabs', () => {
    const lab = (tabsPerHome: number) => () =>
      checkSwarmOptions({ serve: true, tabs: 4, network: { profile: 'lan', tabsPerHome } });
    expect(lab(8)).not.toThrow();
    expect(lab(1)).not.toThrow();
    expect(lab(0)).toThrow(/tabsPerHome must be a positive integer, got 0/);
    expect(lab(1.5)).toThrow(/tabsPerHome/);
  });
});

describe('several coordinator nodes (issue 8)', () => {
  it('--url takes the nodes of a multi-node coordinator, comma separated', () => {
    const plan = planSwarm(
      parse([
        '--url',
        'http://10.0.0.2:8080,http://10.0.0.3:8080/',
        '--tabs',
        '4',
      ]) as SwarmCommandOptions,
    );
    expect(plan.launch.url).toBe('http://10.0.0.2:8080,http://10.0.0.3:8080/');
  });
});

describe('the --json line', () => {
  it('is one line of JSON with the fields the issue names', () => {
    const summary: SwarmSummary = {
      ok: true,
      reason: 'accuracy 0.9100 ≥ 0.9 at iteration 120',
      target: { accuracy: 0.9, maxIterations: null, timeoutSeconds: 600 },
      iterations: 123,
      accuracy: 0.91,
      evaluatedAt: 120,
      phase: 'training',
      tabs: 4,
      tabsOpened: 6,
      tabsClosed: 2,
      tabsClosedMidRound: 2,
      tabsLive: 4,
      roundsStalled: 0,
      medianIterationSeconds: 0.3,
      longestWaitSeconds: 2.5,
      stallThresholdSeconds: 15,
      wireBitsPerParam: 1.036,
      candidatePairs: { host: 6, srflx: 0, prflx: 0, relay: 0 },
      relayedFrames: 0,
      iterationFrames: { relay: 240, direct: 2, request: 1 },
      wallSeconds: 95.2,
      quarantined: ['tab-12345678'],
      byzantine: ['tab-12345678'],
      attack: 'sign-flip',
    };
    const line = summaryLine(summary);
    expect(line).not.toContain('\n');
    const parsed = JSON.parse(line) as Record<string, unknown>;
    for (const field of [
      'iterations',
      'accuracy',
      'tabsClosed',
      'roundsStalled',
      'wireBitsPerParam',
      'wallSeconds',
      'quarantined',
    ]) {
      expect(parsed).toHaveProperty(field, summary[field as keyof SwarmSummary]);
    }
  });
});
