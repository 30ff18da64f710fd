/**
 * `swarmgrad dataset pack`: the command line of the packers (index.ts). Bad data prints one
 * line naming the file and the row or header field and exits 2, with nothing written.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { basename, join, relative, resolve } from 'node:path';
import { DataError } from './errors.ts';
import { DEFAULT_HELD_OUT, packDataset } from './index.ts';

interface PackCliOptions {
  out: string;
  images?: string;
  labels?: string;
  testImages?: string;
  testLabels?: string;
  csv?: string;
  label?: string;
  header?: boolean;
  heldOut?: number;
  partitions: number;
  seed: number;
  name?: string;
  classes?: number;
  force?: boolean;
}

function positiveInt(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${what}: a positive integer`);
    return n;
  };
}

function heldOut(value: string): number {
  const n = Number(value);
  if (!(n > 0) || (n >= 1 && !Number.isInteger(n))) {
    throw new InvalidArgumentError('a count ≥ 1 or a fraction in (0, 1)');
  }
  return n;
}

function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new InvalidArgumentError('an integer');
  return n;
}

class UsageError extends Error {}

export function addDatasetCommand(program: Command): void {
  const dataset = program.command('dataset').description('dataset packs (docs/datasets.md)');
  dataset
    .command('pack')
    .description(
      'build a dataset pack (manifest.json + partitions with SHA-256) from IDX files or a CSV',
    )
    .requiredOption('-o, --out <dir>', 'directory to write the pack into (must not exist)')
    .option('--images <file>', 'IDX training images (e.g. train-images-idx3-ubyte[.gz])')
    .option('--labels <file>', 'IDX training labels')
    .option('--test-images <file>', 'IDX held-out images (else --held-out is cut from training)')
    .option('--test-labels <file>', 'IDX held-out labels')
    .option('--csv <file>', 'CSV of numeric features and one label column')
    .option('--label <column>', 'CSV label column: header name or 0-based number (default last)')
    .option('--no-header', 'CSV: the first line is data (default: detected)')
    .option(
      '--held-out <n>',
      `held-out samples cut from the training data: a count or a fraction (default ${DEFAULT_HELD_OUT})`,
      heldOut,
    )
    .option(
      '--partitions <p>',
      'training partitions (the job\'s "partitions")',
      positiveInt('--partitions'),
      32,
    )
    .option('--seed <s>', 'shuffle seed', integer, 1)
    .option('--name <name>', 'dataset name in the manifest (default: the directory name)')
    .option(
      '--classes <k>',
      'IDX: number of classes (default: largest label + 1)',
      positiveInt('--classes'),
    )
    .option('--force', 'replace an existing pack directory (once the new one is complete)')
    .exitOverride()
    .action(async (opts: PackCliOptions, command: Command) => {
      try {
        const idx = opts.images !== undefined || opts.labels !== undefined;
        if (idx === (opts.csv !== undefined)) {
          throw new UsageError('give either --images and --labels (IDX) or --csv');
        }
        if (idx && (opts.images === undefined || opts.labels === undefined)) {
          throw new UsageError('--images and --labels go together');
        }
        const common = {
          name: opts.name ?? basename(resolve(opts.out)),
          partitions: opts.partitions,
          seed: opts.seed,
          ...(opts.heldOut === undefined ? {} : { heldOut: opts.heldOut }),
        };
        // commander sets header: true by default (from --no-header); only false means something
        const headerGiven = command.getOptionValueSource('header') === 'cli';
        const pack = await packDataset(
          opts.out,
          idx
            ? {
                kind: 'idx',
                ...common,
                images: opts.images!,
                labels: opts.labels!,
                ...(opts.testImages === undefined ? {} : { testImages: opts.testImages }),
                ...(opts.testLabels === undefined ? {} : { testLabels: opts.testLabels }),
                ...(opts.classes === undefined ? {} : { classes: opts.classes }),
              }
            : {
                kind: 'csv',
                ...common,
                csv: opts.csv!,
                ...(opts.label === undefined ? {} : { label: opts.label }),
                header: headerGiven ? false : 'auto',
              },
          { force: opts.force === true },
        );
        const m = pack.manifest;
        const train = m.partitions.reduce((n, p) => n + p.count, 0);
        const manifestPath = join(resolve(opts.out), 'manifest.json');
        const shown = relative(process.cwd(), manifestPath);
        process.stdout.write(
          [
            `packed ${train} training samples in ${m.partitions.length} partitions and ${m.heldOutCount} held-out`,
            `  ${m.features} features${m.inputShape ? ` (${m.inputShape.join(' × ')})` : ''}, ${m.classes} classes`,
            `  manifest: ${manifestPath}`,
            `  in a job file: "dataset": { "manifestUrl": "${shown.startsWith('..') ? manifestPath : shown}" }, "partitions": ${m.partitions.length}`,
            `  (a path is relative to the job file's directory)`,
            '',
          ].join('\n'),
        );
      } catch (error) {
        if (
          error instanceof DataError ||
          error instanceof UsageError ||
          error instanceof RangeError
        ) {
          process.stderr.write(`swarmgrad dataset pack: ${error.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw error;
      }
    });
}
