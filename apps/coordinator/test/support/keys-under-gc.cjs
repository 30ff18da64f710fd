/**
 * Child process of signing-key.test.ts: `node --gc-interval=N keys-under-gc.cjs <module> K P`
 * loads signing-key.ts bundled as CommonJS (<module>), makes K signing keys and exports each
 * one's public half five times while V8 collects garbage every N allocations (P allocations
 * first shift where the collections fall), then prints what it made. Keys straight from
 * generateKeyPairSync hung 7 of 12 such runs (signing-key.ts says why).
 */
'use strict';
// CommonJS on purpose: the same loop as an ES module never hung, even with the unsafe keys
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { newSigningKey, publicKeyOf } = require(process.argv[2]);

const keys = Number(process.argv[3]);
const shift = Array.from({ length: Number(process.argv[4]) }, (_, i) => ({ i }));
// the exported strings are counted, not kept: keeping them moved the collections away
let chars = 0;
for (let i = 0; i < keys; i++) {
  const key = newSigningKey();
  for (let j = 0; j < 5; j++) chars += publicKeyOf(key).length;
}
console.log(JSON.stringify({ keys, chars, shift: shift.length }));
