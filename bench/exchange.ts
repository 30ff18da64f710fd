/**
 * Exchange benchmark (issue 18 item 4): how long one exchange of updates between the tabs of a
 * cluster takes at large dimensions, with the one-bit codec (what swarmgrad sends) and fp32
 * (what DISCO sends).
 *
 *   npm run bench -- exchange [--tabs 4] [--dims 1000000,2500000] [--codecs one-bit,fp32]
 *                             [--reps 5] [--json]
 *
 * The tabs are `--tabs` meshes (packages/worker mesh.ts, the product's transport: simple-peer
 * over real WebRTC data channels from @roamhq/wrtc, as the Node worker uses), linked all to all
 * as a cluster is. One exchange: every tab encodes its own update of d parameters into a frame
 * (encodeToFrame, the codec's default block size, error feedback on), sends it to every other
 * tab (the mesh chunks it into 64 KiB messages and honours bufferedAmount back-pressure with its
 * default high/low-water marks), and every tab decodes and accumulates each frame it receives
 * (decodeFrameInto, checksum and checks included). msPerExchange is the time from the first
 * encode to the last decode, the median of `--reps` exchanges after one untimed warm-up;
 * `bytes` is one update frame (header included), each tab sends tabs − 1 of them.
 *
 * All tabs live in this one process: their encodes and decodes share one JavaScript thread
 * (the data channels' SCTP runs on wrtc's own threads), so codec work is serialised across tabs
 * where real tabs would run it in parallel; on a 2-core machine that differs little.
 */
import wrtc from '@roamhq/wrtc';
import Peer from 'simple-peer';
import { cpus, loadavg } from 'node:os';
import { jobIdOf } from '@swarmgrad/protocol';
import {
  createRng,
  decodeFrameInto,
  encodeToFrame,
  gaussian,
  getCodec,
  type CodecEncoder,
} from '@swarmgrad/core';
import { Mesh, silentLogger, systemClock, type PeerConstructor } from '@swarmgrad/worker';

type CodecName = 'one-bit' | 'fp32';

export interface ExchangeRow {
  tabs: number;
  dimension: number;
  codec: CodecName;
  bytes: number;
  msPerExchange: number;
}

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args[at + 1];
}

function integers(args: string[], name: string, fallback: number[], min: number): number[] {
  const raw = option(args, name);
  if (raw === undefined) return fallback;
  const values = raw.split(',').map(Number);
  if (values.some((v) => !Number.isInteger(v) || v < min)) {
    throw new RangeError(`${name} needs integers ≥ ${min}, comma-separated`);
  }
  return values;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Cluster {
  meshes: Mesh[];
  ids: string[];
  /** Called with (receiver index, frame) for every frame a tab receives. */
  onFrame: (handler: ((to: number, frame: Uint8Array) => void) | undefined) => void;
  close(): void;
}

/** `tabs` meshes over real WebRTC, all linked; resolves once every link is connected. */
async function connectCluster(tabs: number): Promise<Cluster> {
  const ids = Array.from({ length: tabs }, (_, i) => `tab-${i}`);
  const byId = new Map<string, Mesh>();
  let handler: ((to: number, frame: Uint8Array) => void) | undefined;
  const meshes = ids.map((id, index) => {
    const mesh = new Mesh({
      selfId: id,
      PeerCtor: Peer as unknown as PeerConstructor,
      wrtc,
      sendSignal: (to, data) => setTimeout(() => byId.get(to)?.handleSignal(id, data), 0),
      clock: systemClock,
      logger: silentLogger,
    });
    mesh.on('frame', (_from, frame) => handler?.(index, frame));
    byId.set(id, mesh);
    return mesh;
  });
  for (const mesh of meshes) mesh.setPeers(ids);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const connected = meshes.every((mesh, i) =>
      ids.every((id, j) => i === j || mesh.linkState(id) === 'connected'),
    );
    if (connected) break;
    if (Date.now() > deadline) {
      for (const mesh of meshes) mesh.close();
      throw new Error(`the ${tabs} tabs did not all link within 30 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    meshes,
    ids,
    onFrame: (h) => (handler = h),
    close: () => {
      for (const mesh of meshes) mesh.close();
    },
  };
}

/** One exchange; resolves with its milliseconds and the frame size. */
async function exchange(
  cluster: Cluster,
  encoders: CodecEncoder[],
  updates: Float32Array[],
  sums: Float32Array[],
  iteration: number,
): Promise<{ ms: number; bytes: number }> {
  const tabs = cluster.meshes.length;
  const jobId = jobIdOf('bench-exchange');
  const dimension = updates[0]!.length;
  let pending = tabs * (tabs - 1);
  const done = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`exchange ${iteration}: ${pending} frames missing after 120 s`)),
      120_000,
    );
    cluster.onFrame((to, frame) => {
      const result = decodeFrameInto(frame, sums[to]!, { jobId, dimension, iteration });
      if (!result.ok) {
        clearTimeout(timer);
        reject(new Error(`tab ${to}: ${result.error.code} ${result.error.message}`));
      } else if (--pending === 0) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const start = performance.now();
  let bytes = 0;
  for (let i = 0; i < tabs; i++) {
    const frame = encodeToFrame(encoders[i]!, updates[i]!, {
      jobId,
      iteration,
      round: 0,
      senderSlot: i,
    });
    bytes = frame.byteLength;
    for (let j = 0; j < tabs; j++) if (j !== i) cluster.meshes[i]!.send(cluster.ids[j]!, frame);
  }
  try {
    await done;
  } finally {
    cluster.onFrame(undefined);
  }
  return { ms: performance.now() - start, bytes };
}

export async function measure(o: {
  tabs: number;
  dimension: number;
  codec: CodecName;
  reps: number;
}): Promise<ExchangeRow> {
  const codec = getCodec(o.codec);
  const rng = createRng(o.dimension + o.tabs);
  const updates = Array.from({ length: o.tabs }, () => {
    const u = new Float32Array(o.dimension);
    for (let i = 0; i < u.length; i++) u[i] = 1e-3 * gaussian(rng);
    return u;
  });
  const encoders = updates.map((_, i) =>
    codec.createEncoder(o.dimension, { blockSize: codec.defaultBlockSize, seed: i + 1 }),
  );
  const sums = updates.map(() => new Float32Array(o.dimension));
  const cluster = await connectCluster(o.tabs);
  try {
    const times: number[] = [];
    let bytes = 0;
    for (let rep = 0; rep <= o.reps; rep++) {
      const result = await exchange(cluster, encoders, updates, sums, rep + 1);
      bytes = result.bytes;
      if (rep > 0) times.push(result.ms); // rep 0 warms up
    }
    for (const mesh of cluster.meshes) {
      for (const link of mesh.linkInfo()) {
        if (link.errors > 0) throw new Error(`link ${link.tabId}: ${link.errors} refused chunks`);
      }
    }
    return {
      tabs: o.tabs,
      dimension: o.dimension,
      codec: o.codec,
      bytes,
      msPerExchange: Number(median(times).toFixed(1)),
    };
  } finally {
    cluster.close();
  }
}

export async function run(args: string[]): Promise<void> {
  const json = args.includes('--json');
  const tabsList = integers(args, '--tabs', [4], 2);
  const dims = integers(args, '--dims', [1_000_000, 2_500_000], 1);
  const reps = integers(args, '--reps', [5], 1)[0]!;
  const codecs = (option(args, '--codecs') ?? 'one-bit,fp32').split(',') as CodecName[];
  for (const c of codecs) {
    if (c !== 'one-bit' && c !== 'fp32')
      throw new RangeError(`--codecs: one-bit or fp32, got ${c}`);
  }
  const loadBefore = loadavg().map((x) => Number(x.toFixed(2)));
  const rows: ExchangeRow[] = [];
  for (const tabs of tabsList) {
    for (const dimension of dims) {
      for (const codec of codecs) {
        rows.push(await measure({ tabs, dimension, codec, reps }));
        if (!json) {
          const r = rows[rows.length - 1]!;
          console.error(`${r.tabs} tabs, d = ${r.dimension}, ${r.codec}: ${r.msPerExchange} ms`);
        }
      }
    }
  }
  const loadAfter = loadavg().map((x) => Number(x.toFixed(2)));
  if (json) {
    console.log(
      JSON.stringify({
        bench: 'exchange',
        reps,
        cores: cpus().length,
        node: process.version,
        loadavg: { before: loadBefore, after: loadAfter },
        rows,
      }),
    );
    return;
  }
  const header = ['tabs', 'dimension', 'codec', 'bytes per frame', 'ms per exchange', 'vs fp32'];
  const lines = rows.map((r) => {
    const fp32 = rows.find(
      (x) => x.codec === 'fp32' && x.tabs === r.tabs && x.dimension === r.dimension,
    );
    return [
      String(r.tabs),
      r.dimension.toLocaleString('en-US'),
      r.codec,
      r.bytes.toLocaleString('en-US'),
      r.msPerExchange.toFixed(1),
      fp32 ? `${(r.msPerExchange / fp32.msPerExchange).toFixed(3)}×` : '—',
    ];
  });
  console.log(`| ${header.join(' | ')} |`);
  console.log(`| ${header.map(() => '---').join(' | ')} |`);
  for (const line of lines) console.log(`| ${line.join(' | ')} |`);
  console.log(
    `\n${reps} timed exchanges per row (median), ${cpus().length} cores, node ${process.version}, load average ${loadBefore.join(' ')} → ${loadAfter.join(' ')}`,
  );
}
