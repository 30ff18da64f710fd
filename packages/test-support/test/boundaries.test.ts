/**
 * The import boundaries of eslint.config.js (docs/architecture.md, "Layers"): the repository's
 * own ESLint config, run through the ESLint class on fixture sources placed at package paths,
 * must fail an import of an app from a package, a wrong-direction import between layers and a
 * relative import of another package's test support, and must pass an import that keeps the
 * rules. The fixtures are written to a temporary directory and linted as if they lived at the
 * package path (lintText's filePath), so the tree is never touched.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ESLint } from 'eslint';

const root = fileURLToPath(new URL('../../..', import.meta.url));
let eslint: ESLint;
let dir: string;

beforeAll(async () => {
  eslint = new ESLint({ cwd: root });
  dir = await mkdtemp(join(tmpdir(), 'swarmgrad-boundaries-'));
  // loading the config (typescript-eslint and all) takes seconds on a busy machine: here, not
  // inside the first test's time budget
  await eslint.calculateConfigForFile(join(root, 'packages/core/src/index.ts'));
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `source` to a temporary fixture file and lints it as the repository file `at`. */
async function lintAt(at: string, source: string): Promise<ESLint.LintResult> {
  const fixture = join(dir, at.replaceAll('/', '__'));
  await writeFile(fixture, source);
  const [result] = await eslint.lintText(await readFile(fixture, 'utf8'), {
    filePath: join(root, at),
  });
  return result!;
}

function boundaryErrors(result: ESLint.LintResult) {
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports');
}

describe('eslint import boundaries', () => {
  it('fails a package that imports an app by a relative path (the old swarm → apps/web import)', async () => {
    const result = await lintAt(
      'packages/swarm/src/boundary-fixture.ts',
      "import type { SwarmgradDebug } from '../../../apps/web/src/volunteer/debug.ts';\n" +
        'export type Hook = SwarmgradDebug;\n',
    );
    const errors = boundaryErrors(result);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.severity).toBe(2);
    expect(errors[0]!.line).toBe(1);
    expect(errors[0]!.message).toMatch(/a package must not import an app/);
  });

  it('fails a package that imports an app by its package name', async () => {
    const result = await lintAt(
      'packages/worker/src/boundary-fixture.ts',
      "import { Coordinator } from '@swarmgrad/coordinator';\nexport const c = Coordinator;\n",
    );
    const errors = boundaryErrors(result);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/a package must not import an app/),
    ]);
  });

  it('fails an import up the layers (core or model importing the worker, protocol importing core)', async () => {
    const core = await lintAt(
      'packages/core/src/boundary-fixture.ts',
      "import { createWorker } from '@swarmgrad/worker';\nexport const w = createWorker;\n",
    );
    expect(boundaryErrors(core).map((e) => e.message)).toEqual([
      expect.stringMatching(/@swarmgrad\/core may import only @swarmgrad\/protocol/),
    ]);
    // the model package sits beside core: it may not reach the worker that uses it
    const model = await lintAt(
      'packages/model/src/boundary-fixture.ts',
      "import { createWorker } from '@swarmgrad/worker';\nexport const w = createWorker;\n",
    );
    expect(boundaryErrors(model).map((e) => e.message)).toEqual([
      expect.stringMatching(/@swarmgrad\/model may import only @swarmgrad\/protocol/),
    ]);
    const protocol = await lintAt(
      'packages/protocol/src/boundary-fixture.ts',
      "import { mean } from '@swarmgrad/core';\nexport const m = mean;\n",
    );
    expect(boundaryErrors(protocol).map((e) => e.message)).toEqual([
      expect.stringMatching(/@swarmgrad\/protocol may import only no workspace package/),
    ]);
  });

  it('fails a relative import of another package (it would slip past the layer rule)', async () => {
    const result = await lintAt(
      'packages/core/src/codec/boundary-fixture.ts',
      "import { createWorker } from '../../../worker/src/worker.ts';\nexport const w = createWorker;\n",
    );
    expect(boundaryErrors(result).map((e) => e.message)).toEqual([
      expect.stringMatching(/a relative import into another workspace package/),
    ]);
  });

  it("fails another package's test support reached by a relative path, and src importing test support", async () => {
    const test = await lintAt(
      'packages/worker/test/boundary-fixture.test.ts',
      "import { ClientTab } from '../../../apps/coordinator/test/support/client-tab.ts';\n" +
        'export const t = ClientTab;\n',
    );
    expect(boundaryErrors(test).map((e) => e.message)).toEqual([
      expect.stringMatching(/comes from '@swarmgrad\/test-support'/),
    ]);
    const app = await lintAt(
      'apps/coordinator/src/boundary-fixture.ts',
      "import { waitFor } from '@swarmgrad/test-support/harness';\nexport const w = waitFor;\n",
    );
    expect(boundaryErrors(app).map((e) => e.message)).toEqual([
      expect.stringMatching(/for tests only/),
    ]);
  });

  it('passes imports that keep the rules', async () => {
    const swarm = await lintAt(
      'packages/swarm/src/boundary-fixture.ts',
      "import type { DataChannelTraffic } from '@swarmgrad/protocol';\n" +
        "import { createWorker } from '@swarmgrad/worker';\n" +
        "import { launchBrowser } from './browser.ts';\n" +
        'export const used = [createWorker, launchBrowser];\n' +
        'export type Traffic = DataChannelTraffic;\n',
    );
    expect(swarm.messages).toEqual([]);
    const test = await lintAt(
      'packages/worker/test/boundary-fixture.test.ts',
      "import { waitFor } from '@swarmgrad/test-support/harness';\n" +
        "import { FakePeer } from './support/fake-peer.ts';\n" +
        "import type { Coordinator } from '@swarmgrad/coordinator';\n" +
        'export const used = [waitFor, FakePeer];\n' +
        'export type C = Coordinator;\n',
    );
    expect(test.messages).toEqual([]);
    const support = await lintAt(
      'packages/test-support/src/boundary-fixture.ts',
      "import { Coordinator } from '@swarmgrad/coordinator';\nexport const c = Coordinator;\n",
    );
    expect(support.messages).toEqual([]);
  });
});
