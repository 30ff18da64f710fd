/**
 * Codec benchmark (issue 2): cost of each registered codec on one update of d parameters,
 * relative to one plain fp32 accumulate pass `out[i] += g[i]` over the same vector, measured in
 * the same run.
 *
 *   npm run bench -- codec [--json] [--dim N] [--block B] [--reps R] [--codec NAME]
 *
 * encode = encodeToFrame (allocate the frame, encode with the codec's default error feedback,
 * checksum); decode = decodeFrameInto (parse + checksum + checks + decode-accumulate into a
 * non-zero vector); decode-acc = the codec's decodeAccumulate on the payload alone. Each codec
 * runs in its own loop with its baseline pass: per repetition the four measurements (pass,
 * encode, decode, decode-acc) run in a rotating order so that drift (GC, frequency, other load)
 * spreads over all of them; each timing is the median of R repetitions after a warm-up.
 * Targets (one-bit, d = 1e6, B = 1024): bits/param ≤ 1.05, encode ≤ 2.5×, decode ≤ 1.5× the pass.
 */
import { jobIdOf } from '@swarmgrad/protocol';
import {
  bitsPerParameter,
  decodeFrameInto,
  encodeToFrame,
  registeredCodecs,
  createRng,
  gaussian,
  type Codec,
} from '@swarmgrad/core';

const TARGETS = { bitsPerParam: 1.05, encodeVsFp32Pass: 2.5, decodeVsFp32Pass: 1.5 };

function numberOption(args: string[], name: string, fallback: number): number {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(args[at + 1]);
  if (!Number.isFinite(value) || value <= 0)
    throw new RangeError(`${name} needs a positive number`);
  return value;
}

/** The baseline: one plain fp32 accumulate pass. */
function fp32Pass(out: Float32Array, g: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i]! += g[i]!;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Row {
  codec: string;
  bitsPerParam: number;
  payloadBytes: number;
  /** Median of the baseline pass measured in this codec's loop. */
  passMs: number;
  encodeMs: number;
  decodeMs: number;
  decodeAccumulateMs: number;
  encodeVsFp32Pass: number;
  decodeVsFp32Pass: number;
  decodeAccumulateVsFp32Pass: number;
}

export async function run(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const d = numberOption(args, '--dim', 1_000_000);
  const blockSize = numberOption(args, '--block', 1024);
  const reps = numberOption(args, '--reps', 151);
  const warmup = 30;

  const rng = createRng(2);
  const update = new Float32Array(d);
  for (let i = 0; i < d; i++) update[i] = 1e-3 * gaussian(rng);
  const header = { jobId: jobIdOf('bench'), iteration: 1, round: 0, senderSlot: 0 };
  const expect = { jobId: header.jobId, dimension: d };
  const passOut = new Float32Array(d).fill(0.5);
  const decodeOut = new Float32Array(d).fill(0.5);

  interface Subject {
    codec: Codec;
    encode: () => void;
    decode: () => void;
    decodeAccumulate: () => void;
  }
  // --codec NAME measures one-bit (the targets) and NAME only
  const only = args.includes('--codec') ? args[args.indexOf('--codec') + 1] : undefined;
  const chosen = registeredCodecs.filter(
    (c) => only === undefined || c.name === only || c.name === 'one-bit',
  );
  const subjects: Subject[] = chosen.map((codec) => {
    const encoder = codec.createEncoder(d, {
      blockSize: codec.defaultBlockSize === 0 ? 0 : blockSize,
      seed: 7,
    });
    const frame = encodeToFrame(encoder, update, header);
    const payload = frame.subarray(40);
    return {
      codec,
      encode: () => {
        encodeToFrame(encoder, update, header);
      },
      decode: () => {
        const result = decodeFrameInto(frame, decodeOut, expect);
        if (!result.ok) throw new Error(`${codec.name}: ${result.error.message}`);
      },
      decodeAccumulate: () => {
        const result = codec.decodeAccumulate(payload, d, encoder.blockSize, decodeOut);
        if (!result.ok) throw new Error(`${codec.name}: ${result.error.message}`);
      },
    };
  });

  // Each codec is measured in its own interleaved loop together with its baseline pass, so that
  // the codec's buffers and the pass's buffers are equally warm (measured in one loop across all
  // codecs, the pass's data stayed hotter in the cache than a codec's residual).
  const rows: Row[] = subjects.map((s) => {
    const tasks: { key: string; fn: () => void }[] = [
      { key: 'pass', fn: () => fp32Pass(passOut, update) },
      { key: 'encode', fn: s.encode },
      { key: 'decode', fn: s.decode },
      { key: 'decodeAccumulate', fn: s.decodeAccumulate },
    ];
    const samples = new Map<string, number[]>(tasks.map((t) => [t.key, []]));
    for (let rep = 0; rep < warmup + reps; rep++) {
      for (let t = 0; t < tasks.length; t++) {
        const task = tasks[(t + rep) % tasks.length]!;
        const start = performance.now();
        task.fn();
        const ms = performance.now() - start;
        if (rep >= warmup) samples.get(task.key)!.push(ms);
      }
    }
    const passMs = median(samples.get('pass')!);
    const encodeMs = median(samples.get('encode')!);
    const decodeMs = median(samples.get('decode')!);
    const decodeAccumulateMs = median(samples.get('decodeAccumulate')!);
    const bs = s.codec.defaultBlockSize === 0 ? 0 : blockSize;
    return {
      codec: s.codec.name,
      bitsPerParam: bitsPerParameter(s.codec, d, bs),
      payloadBytes: s.codec.payloadBytes(d, bs),
      passMs,
      encodeMs,
      decodeMs,
      decodeAccumulateMs,
      encodeVsFp32Pass: encodeMs / passMs,
      decodeVsFp32Pass: decodeMs / passMs,
      decodeAccumulateVsFp32Pass: decodeAccumulateMs / passMs,
    };
  });
  const oneBit = rows.find((r) => r.codec === 'one-bit');
  if (oneBit === undefined) throw new Error('one-bit codec is not registered');

  const round = (x: number, digits = 3): number => Number(x.toFixed(digits));
  const met = {
    bitsPerParam: oneBit.bitsPerParam <= TARGETS.bitsPerParam,
    encodeVsFp32Pass: oneBit.encodeVsFp32Pass <= TARGETS.encodeVsFp32Pass,
    decodeVsFp32Pass: oneBit.decodeVsFp32Pass <= TARGETS.decodeVsFp32Pass,
  };
  if (json) {
    console.log(
      JSON.stringify({
        bench: 'codec',
        dimension: d,
        blockSize,
        reps,
        node: process.version,
        fp32PassMs: round(oneBit.passMs, 4),
        bitsPerParam: round(oneBit.bitsPerParam, 4),
        encodeVsFp32Pass: round(oneBit.encodeVsFp32Pass),
        decodeVsFp32Pass: round(oneBit.decodeVsFp32Pass),
        decodeAccumulateVsFp32Pass: round(oneBit.decodeAccumulateVsFp32Pass),
        targets: TARGETS,
        met,
        codecs: rows.map((r) => ({
          codec: r.codec,
          bitsPerParam: round(r.bitsPerParam, 4),
          payloadBytes: r.payloadBytes,
          fp32PassMs: round(r.passMs, 4),
          encodeMs: round(r.encodeMs, 4),
          decodeMs: round(r.decodeMs, 4),
          decodeAccumulateMs: round(r.decodeAccumulateMs, 4),
        })),
      }),
    );
    return;
  }
  const table: string[][] = [
    [
      'codec',
      'bits/param',
      'pass ms',
      'encode ms',
      'decode ms',
      'decode-acc ms',
      'encode / pass',
      'decode / pass',
      'decode-acc / pass',
    ],
    ...rows.map((r) => [
      r.codec,
      r.bitsPerParam.toFixed(3),
      r.passMs.toFixed(3),
      r.encodeMs.toFixed(3),
      r.decodeMs.toFixed(3),
      r.decodeAccumulateMs.toFixed(3),
      `${r.encodeVsFp32Pass.toFixed(2)}×`,
      `${r.decodeVsFp32Pass.toFixed(2)}×`,
      `${r.decodeAccumulateVsFp32Pass.toFixed(2)}×`,
    ]),
  ];
  const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
  const line = (row: string[]): string =>
    `| ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  console.log(
    `codec bench: d = ${d}, B = ${blockSize}, median of ${reps} reps after ${warmup} warm-up, ${process.version}`,
  );
  console.log(
    'pass = one fp32 accumulate pass out[i] += g[i], measured in the same loop as the codec',
  );
  console.log(line(table[0]!));
  console.log(
    `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
  );
  for (const row of table.slice(1)) console.log(line(row));
  console.log(
    `one-bit targets: bits/param ≤ ${TARGETS.bitsPerParam} ${met.bitsPerParam ? 'met' : 'MISSED'}, ` +
      `encode ≤ ${TARGETS.encodeVsFp32Pass}× ${met.encodeVsFp32Pass ? 'met' : 'MISSED'}, ` +
      `decode ≤ ${TARGETS.decodeVsFp32Pass}× ${met.decodeVsFp32Pass ? 'met' : 'MISSED'}`,
  );
}
