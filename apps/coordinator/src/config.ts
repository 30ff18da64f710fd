/**
 * Loading the operator's job file. A bad file stops the server before it listens, with an
 * error naming the file, each bad field's path and what was expected.
 */
import { readFile } from 'node:fs/promises';
import { defaultJob, describeIssues, jobSpecSchema, type JobSpec } from '@swarmgrad/protocol';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: invalid job\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function parseJob(value: unknown, file = '(job)'): JobSpec {
  const parsed = jobSpecSchema.safeParse(value);
  if (!parsed.success) throw new ConfigError(file, describeIssues(parsed.error));
  return parsed.data;
}

export async function loadJob(file: string | undefined): Promise<JobSpec> {
  if (file === undefined) return defaultJob;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read the file (${(error as Error).message})`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, [`not valid JSON (${(error as Error).message})`]);
  }
  return parseJob(json, file);
}
