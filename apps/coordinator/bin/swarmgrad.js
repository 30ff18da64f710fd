#!/usr/bin/env node
// Runs the compiled CLI (apps/coordinator/dist/cli.js, built by ../build.mjs with esbuild),
// building it first when dist/ is missing or older than its sources, so a fresh clone works
// with `npx swarmgrad` and no build step. tsx is not loaded; esbuild only when building.
import { ensureCli } from '../build.mjs';

process.setSourceMapsEnabled(true); // stack traces name the TypeScript sources
await ensureCli();
const { main } = await import('../dist/cli.js');
await main(process.argv);
