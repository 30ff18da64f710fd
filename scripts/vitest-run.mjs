#!/usr/bin/env node
/**
 * `npm run test:unit`: `vitest run`, plus one narrow rerun. The Node WebRTC binding the worker
 * tests use (@roamhq/wrtc) now and then segfaults inside its native code when peer connections
 * close (WonderInventions/node-webrtc#35; node-webrtc#325, #391): vitest then reports
 * "Worker exited unexpectedly" for that file and no failed test. Only in that case — a test
 * process died and no test failed — the suite runs once more; any failed assertion fails at
 * once, and a second crash fails too.
 */
import { spawn } from 'node:child_process';

function run() {
  return new Promise((resolve) => {
    const child = spawn('npx', ['vitest', 'run', ...process.argv.slice(2)], {
      stdio: ['inherit', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (stream, sink) =>
      stream.on('data', (chunk) => {
        output += chunk.toString();
        sink.write(chunk);
      });
    keep(child.stdout, process.stdout);
    keep(child.stderr, process.stderr);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 1 : 0), output }));
  });
}

// eslint-disable-next-line no-control-regex
const plain = (text) => text.replace(/\u001b\[[0-9;]*m/g, '');

const first = await run();
if (first.code === 0) process.exit(0);
const text = plain(first.output);
const crashed = /Worker exited unexpectedly/.test(text);
const failedTests = /^\s*Tests?(?: Files)?\s+.*\d+ failed/m.test(text);
if (!crashed || failedTests) process.exit(first.code);
process.stderr.write(
  '\nvitest: a test process died (native crash) and no test failed; running the suite once more\n\n',
);
const second = await run();
process.exit(second.code);
