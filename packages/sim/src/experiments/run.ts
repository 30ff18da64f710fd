/**
 * `npm run experiments [-- [--quick] [--jobs N] [--out DIR] [filter…]]`: runs the experiments
 * (one per table of the issue) and writes docs/results.md plus one or more SVG plots per table
 * under docs/results/.
 *
 * - filter: run only the experiments whose id contains one of the words (codecs, parle,
 *   staleness, backup, byzantine, crashes, default-rule, quarantine-long,
 *   agreement-scale); their sections in an existing results.md are replaced
 *   in place (each section sits between `<!-- experiment:<id> -->` markers), the others kept.
 * - --quick: a smoke run with tiny sizes, written to a temporary directory unless --out is given
 *   (its numbers are not meant to be read).
 * - --jobs N: experiments run in N child processes (default: 2, the cores of the reference
 *   machine); --jobs 1 runs them in this process.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { agreementScaleExperiment } from './agreement-scale.ts';
import { backupExperiment } from './backup.ts';
import { byzantineExperiment } from './byzantine.ts';
import { codecsExperiment } from './codecs.ts';
import type { Experiment, ExperimentOutput } from './common.ts';
import { crashesExperiment } from './crashes.ts';
import { defaultRuleExperiment } from './default-rule.ts';
import { quarantineLongExperiment } from './quarantine-long.ts';
import { parleExperiment } from './parle.ts';
import { stalenessExperiment } from './staleness.ts';

export const experiments: readonly Experiment[] = [
  codecsExperiment,
  parleExperiment,
  stalenessExperiment,
  backupExperiment,
  byzantineExperiment,
  crashesExperiment,
  defaultRuleExperiment,
  quarantineLongExperiment,
  agreementScaleExperiment,
];

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../../..');

interface Options {
  quick: boolean;
  jobs: number;
  out: string;
  filters: string[];
  /** Internal: run one experiment and write its output as JSON here (child mode). */
  emit: string | undefined;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { quick: false, jobs: 2, out: '', filters: [], emit: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') o.quick = true;
    else if (a === '--jobs') o.jobs = Math.max(1, Number(argv[++i]) || 1);
    else if (a === '--out') o.out = resolve(argv[++i] ?? '');
    else if (a === '--emit') o.emit = argv[++i];
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else o.filters.push(a);
  }
  if (o.out === '') {
    o.out = o.quick ? join(tmpdir(), 'swarmgrad-results-quick') : join(repoRoot, 'docs');
  }
  return o;
}

interface Done {
  experiment: Experiment;
  output: ExperimentOutput;
  seconds: number;
}

function runHere(e: Experiment, quick: boolean): Done {
  const t = performance.now();
  const output = e.run({
    quick,
    log: (m) => console.log(`[${e.id}] ${m}`),
  });
  return { experiment: e, output, seconds: (performance.now() - t) / 1000 };
}

function runChild(e: Experiment, o: Options): Promise<Done> {
  const file = join(tmpdir(), `swarmgrad-exp-${process.pid}-${e.id}.json`);
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--emit', file, e.id];
  if (o.quick) args.push('--quick');
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`experiment ${e.id} exited with ${code}`));
        return;
      }
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as {
        output: ExperimentOutput;
        seconds: number;
      };
      resolvePromise({ experiment: e, output: parsed.output, seconds: parsed.seconds });
    });
  });
}

async function runAll(selected: readonly Experiment[], o: Options): Promise<Done[]> {
  if (o.jobs <= 1) return selected.map((e) => runHere(e, o.quick));
  const done = new Map<string, Done>();
  const queue = [...selected];
  const workers = Array.from({ length: Math.min(o.jobs, queue.length) }, async () => {
    while (queue.length > 0) {
      const e = queue.shift()!;
      done.set(e.id, await runChild(e, o));
    }
  });
  await Promise.all(workers);
  return selected.map((e) => done.get(e.id)!);
}

function machine(): string {
  const cpu = cpus();
  return `${cpu.length} cores (\`nproc\`), CPU model "${cpu[0]?.model ?? 'unknown'}", Node ${process.version}`;
}

/**
 * The commit the simulator's code came from, so a table can be traced to the code that made it;
 * "uncommitted" when packages/ differs from that commit (a number from such a run is not
 * reproducible from the history).
 */
function sourceCommit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'packages'], {
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? sha : `${sha} with uncommitted changes in packages/`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

const MARK = (id: string, end = false) => `<!-- experiment:${id}${end ? ':end' : ''} -->`;

function section(d: Done, index: number, commit: string): string {
  return [
    MARK(d.experiment.id),
    `## ${d.experiment.title.replace(/^Table \d+/, `Table ${index + 1}`)}`,
    '',
    `_Ran in ${d.seconds.toFixed(0)} s of wall time, at commit ${commit}._`,
    '',
    d.output.markdown,
    '',
    MARK(d.experiment.id, true),
  ].join('\n');
}

function header(o: Options, seconds: number, all: boolean, commit: string): string {
  const date = new Date().toUTCString();
  return [
    "# Results: the seeds' claims, measured in the simulator",
    '',
    'Produced by `npm run experiments` (packages/sim/src/experiments/run.ts): every number below is ' +
      "measured by running packages/core's own codec, gradient coding, aggregators, agreement, " +
      'backup-worker rule, staleness handling and quarantine on virtual workers (packages/sim), with ' +
      'simulated time kept apart from wall time. Each table says how the measurement compares with the ' +
      "seed's claim, and where it is not reproduced, why. Plots are SVG files under docs/results/.",
    '',
    `- Date: ${date}${o.quick ? ' (quick smoke run: sizes reduced, numbers not meaningful)' : ''}`,
    `- Machine: ${machine()}; shared with other sessions (load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')} over 1 / 5 / 15 min when the run ended), so wall times vary run to run ` +
      '(simulated times and accuracies do not: every run is deterministic for its seed).',
    `- Command: \`npm run experiments${o.quick ? ' -- --quick' : ''}\`, ${o.jobs} job(s); ` +
      `${all ? 'all experiments' : 'a subset'} took ${(seconds / 60).toFixed(1)} min of wall time.`,
    `- Code: commit ${commit}${all ? '' : ' for the tables this run made; each table names the commit it was made at'}.`,
    '',
  ].join('\n');
}

/** The repository's prettier style (so `npm run lint` accepts the file), when prettier is there. */
async function formatted(file: string, text: string): Promise<string> {
  try {
    const prettier = await import('prettier');
    const options = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(text, { ...options, filepath: file });
  } catch {
    return text;
  }
}

async function main(argv: string[]): Promise<void> {
  const o = parseArgs(argv);
  const selected = experiments.filter(
    (e) => o.filters.length === 0 || o.filters.some((f) => e.id.includes(f)),
  );
  if (selected.length === 0) {
    throw new Error(
      `no experiment matches ${o.filters.join(' ')}; ids: ${experiments.map((e) => e.id).join(', ')}`,
    );
  }
  if (o.emit !== undefined) {
    const d = runHere(selected[0]!, o.quick);
    writeFileSync(o.emit, JSON.stringify({ output: d.output, seconds: d.seconds }));
    return;
  }
  const commit = sourceCommit();
  const start = performance.now();
  const done = await runAll(selected, o);
  const seconds = (performance.now() - start) / 1000;
  const plotDir = join(o.out, 'results');
  mkdirSync(plotDir, { recursive: true });
  for (const d of done) for (const p of d.output.plots) writeFileSync(join(plotDir, p.file), p.svg);
  const file = join(o.out, 'results.md');
  const sections = new Map<string, string>();
  let previous: string;
  try {
    previous = readFileSync(file, 'utf8');
  } catch {
    previous = '';
  }
  const all = selected.length === experiments.length;
  for (const e of experiments) {
    const fresh = done.find((d) => d.experiment.id === e.id);
    if (fresh !== undefined) {
      sections.set(e.id, section(fresh, experiments.indexOf(e), commit));
      continue;
    }
    const from = previous.indexOf(MARK(e.id));
    const to = previous.indexOf(MARK(e.id, true));
    if (!all && from >= 0 && to > from) {
      sections.set(e.id, previous.slice(from, to + MARK(e.id, true).length));
    }
  }
  const body = experiments
    .map((e) => sections.get(e.id))
    .filter((s): s is string => s !== undefined);
  writeFileSync(
    file,
    await formatted(file, `${header(o, seconds, all, commit)}\n${body.join('\n\n')}\n`),
  );
  console.log(
    `wrote ${file} and ${done.reduce((n, d) => n + d.output.plots.length, 0)} plots in ${plotDir}`,
  );
  for (const d of done) console.log(`  ${d.experiment.id}: ${d.seconds.toFixed(1)} s`);
  console.log(`total ${(seconds / 60).toFixed(2)} min`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main(process.argv.slice(2));
}
