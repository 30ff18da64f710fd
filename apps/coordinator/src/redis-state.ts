/**
 * The coordinator's shared state in Redis: several `swarmgrad serve --redis <url>` processes
 * are nodes of one coordinator (issue 8). See shared-state.ts for the command log.
 *
 * Keys, under `swarmgrad:<job>:`
 * - `log`       a stream: the commands, in the order every node applies them (XADD is atomic).
 * - `snapshot`  a node's replica at a log entry (genesis at first start, then at every
 *               checkpoint, lease holder only); a node that starts later loads it and reads the
 *               log from that entry. The log is trimmed up to the snapshot (XTRIM MINID).
 * - `lease`     the evaluation/checkpoint lease: SET NX PX, renewed by its holder through a
 *               compare-and-PEXPIRE script; after its holder dies another node takes it within
 *               lease time + one renewal period (3 s + 1 s by default).
 * - `nodes`     a sorted set: node id → heartbeat expiry (Redis server time). The lease holder
 *               appends `node-down` for nodes whose heartbeat expired, so the tabs they held
 *               stop counting as live.
 * - `shares`    a hash: node id → what that node alone knows (node-share.ts: its tabs' reports,
 *               its counters), written with every heartbeat; each beat reads the live nodes'.
 * - `io*`       socket.io's Redis adapter (@socket.io/redis-adapter): signals between tabs held
 *               by different nodes.
 *
 * Redis unreachable: the node reports it (status `node.redis`, an event in the log), tells its
 * tabs the phase is `paused`, refuses proposals with `paused` and hellos by disconnecting
 * (tabs retry), and resumes when Redis is back; it reads the log from where it stopped, so
 * nothing is applied twice or skipped. Redis must keep its data over a restart (AOF or RDB
 * persistence) for the log to survive one; the tests run it with `appendonly yes`.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { createAdapter } from '@socket.io/redis-adapter';
import type { Logger } from 'pino';
import type {
  Command,
  NodeShare,
  NodeStatus,
  SharedState,
  SharedStateHooks,
} from './shared-state.ts';
import { nodeShareSchema } from './node-share.ts';

export interface RedisStateOptions {
  url: string;
  job: string;
  logger: Logger;
  /** Lease time (default 3000 ms); renewed every third of it. */
  leaseMs?: number;
  /** Heartbeat expiry (default 3000 ms); beats every third of it. */
  heartbeatMs?: number;
  /** How long to wait for Redis at start (default 15 s). */
  connectTimeoutMs?: number;
}

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Heartbeat: the node's expiry in Redis server time, the last log entry it applied (the log is
 * never trimmed past a live node's) and its share. Returns the live nodes, then their shares
 * (false where a node has none yet).
 */
const BEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], ARGV[1], ARGV[4]) end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
local shares = {}
if #live > 0 then shares = redis.call('HMGET', KEYS[3], unpack(live)) end
return {live, shares}`;

/** Nodes whose heartbeat expired (not removed: the caller removes them once announced). */
const EXPIRED = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)`;

/**
 * Snapshot by the lease holder only, never older than the stored one. Trims the log up to the
 * snapshot's entry, but never past an entry a live node has not applied yet (a node behind it
 * would miss commands).
 */
const SNAPSHOT = `
local function before(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local stored = tonumber(redis.call('GET', KEYS[4]) or '-1')
if tonumber(ARGV[4]) < stored then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[4], ARGV[4])
local minid = ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], now, '+inf')) do
  local applied = redis.call('HGET', KEYS[6], node)
  if not applied then minid = '0-0' elseif minid ~= '0-0' and before(applied, minid) then minid = applied end
end
if minid ~= '0-0' then redis.call('XTRIM', KEYS[3], 'MINID', minid) end
return 1`;

interface StoredSnapshot {
  /** Log entry the replica includes (read from the entry after it). */
  logId: string;
  replica: unknown;
}

export class RedisState implements SharedState {
  readonly nodeId = `node-${randomUUID().slice(0, 8)}`;
  private readonly options: Required<Omit<RedisStateOptions, 'logger'>> & { logger: Logger };
  private readonly cmd: Redis;
  private readonly reader: Redis;
  private readonly pub: Redis;
  private readonly sub: Redis;
  private readonly keys: {
    log: string;
    snapshot: string;
    snapshotIteration: string;
    lease: string;
    nodes: string;
    applied: string;
    shares: string;
    io: string;
  };
  private hooks: SharedStateHooks | undefined;
  private lastId = '0-0';
  private up = false;
  private upSince = 0;
  private leaseUntil = 0;
  private leaseHeld = false;
  private liveNodes: string[] = [];
  /** This node's share, written at the next beat; the others' as the last beat read them. */
  private ownShare = '';
  private othersShares: NodeShare[] = [];
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Commands appended in this turn of the event loop, in order (one log entry). */
  private batch: { command: Command; failed: (error: Error) => void }[] = [];
  private reading: Promise<void> | undefined;
  private readonly announcedDown = new Set<string>();

  private constructor(options: RedisStateOptions) {
    this.options = {
      leaseMs: 3000,
      heartbeatMs: 3000,
      connectTimeoutMs: 15_000,
      ...options,
    };
    const prefix = `swarmgrad:${options.job}:`;
    this.keys = {
      log: `${prefix}log`,
      snapshot: `${prefix}snapshot`,
      snapshotIteration: `${prefix}snapshot-iteration`,
      lease: `${prefix}lease`,
      nodes: `${prefix}nodes`,
      applied: `${prefix}applied`,
      shares: `${prefix}shares`,
      io: `${prefix}io`,
    };
    const client = (name: string, offlineQueue: boolean): Redis => {
      const redis = new Redis(options.url, {
        lazyConnect: true,
        enableOfflineQueue: offlineQueue,
        maxRetriesPerRequest: offlineQueue ? null : 1,
        retryStrategy: (times) => Math.min(100 * times, 1000),
        connectionName: `swarmgrad-${this.nodeId}-${name}`,
      });
      redis.on('error', (error: Error) =>
        this.options.logger.debug({ err: error.message, client: name }, 'redis client error'),
      );
      return redis;
    };
    // commands fail at once while Redis is away (the node pauses instead of queueing)
    this.cmd = client('cmd', false);
    this.reader = client('reader', false);
    // socket.io's adapter re-subscribes by itself after a reconnection
    this.pub = client('pub', true);
    this.sub = client('sub', true);
    this.cmd.on('ready', () => this.setUp(true));
    this.cmd.on('close', () => this.setUp(false));
  }

  /** Connects to Redis (waiting up to connectTimeoutMs for it). */
  static async connect(options: RedisStateOptions): Promise<RedisState> {
    const state = new RedisState(options);
    const deadline = Date.now() + state.options.connectTimeoutMs;
    for (const redis of [state.cmd, state.reader, state.pub, state.sub]) {
      for (;;) {
        try {
          await redis.connect();
          break;
        } catch (error) {
          if (Date.now() > deadline) {
            await state.close();
            throw new Error(
              `cannot reach Redis at ${options.url}: ${error instanceof Error ? error.message : String(error)}`,
              { cause: error },
            );
          }
          redis.disconnect();
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
    state.up = true;
    state.upSince = Date.now();
    return state;
  }

  /** socket.io's Redis adapter over this node's pub/sub connections. */
  adapter(): ReturnType<typeof createAdapter> {
    return createAdapter(this.pub, this.sub, { key: this.keys.io });
  }

  /**
   * Loads the shared snapshot into the replica (seeding it from this node's replica when the
   * swarm is new), then follows the log, beats and competes for the lease.
   */
  async start(hooks: SharedStateHooks): Promise<void> {
    this.hooks = hooks;
    const genesis: StoredSnapshot = { logId: '0-0', replica: hooks.exportReplica() };
    const seeded = await this.cmd.set(this.keys.snapshot, encode(genesis), 'NX');
    if (seeded === 'OK') {
      this.options.logger.info({ node: this.nodeId }, 'seeded the shared state in Redis');
    }
    const stored = await this.cmd.get(this.keys.snapshot);
    if (stored === null) throw new Error('the shared snapshot vanished from Redis');
    const snapshot = decode(stored) as StoredSnapshot;
    hooks.importReplica(snapshot.replica);
    this.lastId = snapshot.logId;
    // catch up before serving: the replica is current when the first tab says hello
    while ((await this.readOnce(0)) > 0);
    await this.beat();
    await this.leaseTick();
    const period = Math.max(
      100,
      Math.floor(Math.min(this.options.leaseMs, this.options.heartbeatMs) / 3),
    );
    this.timers.push(setInterval(() => void this.beat(), period));
    this.timers.push(setInterval(() => void this.leaseTick(), period));
    for (const t of this.timers) t.unref();
    this.reading = this.follow();
  }

  /**
   * Commands appended during one turn of the event loop go on the log as one entry (field `b`,
   * in order): one XADD, one entry to read and parse per node, instead of one per command (at
   * a thousand tabs, ~1,000 confirmations per iteration).
   */
  append(command: Command, failed: (error: Error) => void): void {
    if (!this.up) {
      failed(new Error('redis unavailable'));
      return;
    }
    this.batch.push({ command: onTheLog(command), failed });
    if (this.batch.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const fail = (error: unknown) => {
      for (const { failed } of batch)
        failed(error instanceof Error ? error : new Error(String(error)));
    };
    if (!this.up) {
      fail(new Error('redis unavailable'));
      return;
    }
    const entry = encodeCommands(batch.map((b) => b.command));
    const task = (
      entry.frames.byteLength > 0
        ? this.cmd.xadd(this.keys.log, '*', 'b', entry.json, 'f', entry.frames)
        : this.cmd.xadd(this.keys.log, '*', 'b', entry.json)
    )
      .then(() => undefined)
      .catch(fail);
    this.track(task);
  }

  holdsLease(): boolean {
    return this.leaseHeld && Date.now() < this.leaseUntil;
  }

  available(): boolean {
    return this.up;
  }

  saveSnapshot(): void {
    if (!this.hooks || !this.holdsLease()) return;
    const replica = this.hooks.exportReplica() as { iteration?: number };
    const snapshot: StoredSnapshot = { logId: this.lastId, replica };
    const task = this.cmd
      .eval(
        SNAPSHOT,
        6,
        this.keys.lease,
        this.keys.snapshot,
        this.keys.log,
        this.keys.snapshotIteration,
        this.keys.nodes,
        this.keys.applied,
        this.nodeId,
        encode(snapshot),
        this.lastId,
        String(replica.iteration ?? 0),
      )
      .catch((error: unknown) =>
        this.options.logger.warn({ err: String(error) }, 'snapshot to redis failed'),
      );
    this.track(task);
  }

  share(own: NodeShare): void {
    this.ownShare = JSON.stringify(own);
  }

  sharedByOthers(): readonly NodeShare[] {
    return this.othersShares;
  }

  status(): NodeStatus {
    return {
      id: this.nodeId,
      redis: this.up ? 'up' : 'down',
      leaseHolder: this.holdsLease(),
      nodes: [...this.liveNodes],
      applied: this.lastId,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.flush();
    await Promise.allSettled([...this.inFlight]);
    if (this.up) {
      await Promise.allSettled([
        this.cmd.eval(RELEASE, 1, this.keys.lease, this.nodeId),
        this.cmd.zrem(this.keys.nodes, this.nodeId),
        this.cmd.hdel(this.keys.applied, this.nodeId),
        this.cmd.hdel(this.keys.shares, this.nodeId),
      ]);
    }
    for (const redis of [this.reader, this.sub, this.pub, this.cmd]) redis.disconnect();
    await this.reading?.catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------

  private track(task: Promise<unknown>): void {
    this.inFlight.add(task);
    void task.finally(() => this.inFlight.delete(task));
  }

  private setUp(up: boolean): void {
    if (this.closed || this.up === up || this.hooks === undefined) return;
    this.up = up;
    if (up) this.upSince = Date.now();
    else this.leaseHeld = false;
    this.options.logger.warn({ node: this.nodeId }, up ? 'redis is back' : 'redis unreachable');
    if (up) void this.beat();
    this.hooks?.availability(up);
  }

  /**
   * Reads and applies the log entries after lastId (blocking up to blockMs for new ones);
   * returns how many entries it read.
   */
  private async readOnce(blockMs: number): Promise<number> {
    const args: (string | number)[] = ['COUNT', 500];
    if (blockMs > 0) args.push('BLOCK', blockMs);
    // as bytes: the frames of a batch travel as one binary field, not as base64 in its JSON
    const result = (await this.reader.xreadBuffer(
      ...(args as ['COUNT', number]),
      'STREAMS',
      this.keys.log,
      this.lastId,
    )) as [Buffer, [Buffer, Buffer[]][]][] | null;
    let read = 0;
    for (const [, entries] of result ?? []) {
      for (const [idBytes, fields] of entries) {
        const id = idBytes.toString();
        this.lastId = id;
        read++;
        const raw = fields[1];
        if (raw === undefined) continue;
        let commands: Command[];
        try {
          // `b`: a batch of commands in order, then `f`: their frames (absent when none, and in
          // logs written before it: frames as base64 in the batch); `c`: one command (logs
          // written before batches)
          const kind = fields[0]?.toString();
          const frames = fields[2]?.toString() === 'f' ? fields[3] : undefined;
          commands =
            kind === 'b'
              ? decodeCommands(raw.toString(), frames)
              : [decode(raw.toString()) as Command];
        } catch (error) {
          this.options.logger.error({ id, err: String(error) }, 'unreadable log entry skipped');
          continue;
        }
        for (const command of commands) {
          try {
            this.hooks?.apply(command);
          } catch (error) {
            this.options.logger.error({ id, kind: command.kind, err: error }, 'applying failed');
          }
        }
      }
    }
    return read;
  }

  private async follow(): Promise<void> {
    while (!this.closed) {
      try {
        await this.readOnce(1000);
      } catch {
        if (this.closed) return;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async beat(): Promise<void> {
    if (this.closed || !this.up) return;
    try {
      const [live, shares] = (await this.cmd.eval(
        BEAT,
        3,
        this.keys.nodes,
        this.keys.applied,
        this.keys.shares,
        this.nodeId,
        String(this.options.heartbeatMs),
        this.lastId,
        this.ownShare,
      )) as [string[], (string | null)[]];
      this.othersShares = live.flatMap((node, i) => {
        const text = shares[i];
        if (node === this.nodeId || typeof text !== 'string') return [];
        const parsed = nodeShareSchema.safeParse(parseJson(text));
        return parsed.success ? [parsed.data] : [];
      });
      this.liveNodes = live.sort();
    } catch {
      // Redis away: setUp(false) reports it
    }
  }

  private async leaseTick(): Promise<void> {
    if (this.closed || !this.up) return;
    const asked = Date.now();
    try {
      // renew whenever the lease names this node (also just after an outage, when leaseHeld
      // was cleared but the key may still be ours), else try to take it
      const renewed = await this.cmd.eval(
        RENEW,
        1,
        this.keys.lease,
        this.nodeId,
        String(this.options.leaseMs),
      );
      if (renewed === 1) {
        this.leaseUntil = asked + this.options.leaseMs;
        if (!this.leaseHeld) {
          this.leaseHeld = true;
          this.hooks?.lease(true);
        }
      } else if (this.leaseHeld) {
        this.leaseHeld = false;
        this.hooks?.lease(false);
      } else {
        const taken = await this.cmd.set(
          this.keys.lease,
          this.nodeId,
          'PX',
          this.options.leaseMs,
          'NX',
        );
        if (taken === 'OK') {
          this.leaseHeld = true;
          this.leaseUntil = asked + this.options.leaseMs;
          this.hooks?.lease(true);
        }
      }
      if (this.holdsLease()) await this.reapNodes();
    } catch {
      // Redis away: retried at the next tick
    }
  }

  /** Lease holder: announces nodes whose heartbeat expired (after its own beat is fresh). */
  private async reapNodes(): Promise<void> {
    // just after a Redis outage every heartbeat looks expired: give the nodes a beat first
    if (Date.now() - this.upSince < this.options.heartbeatMs) return;
    const expired = (await this.cmd.eval(EXPIRED, 1, this.keys.nodes)) as string[];
    for (const node of expired) {
      if (node === this.nodeId) continue;
      if (!this.announcedDown.has(node)) {
        this.announcedDown.add(node);
        this.options.logger.warn({ node }, 'node stopped heartbeating');
        this.append(
          {
            kind: 'node-down',
            id: `${this.nodeId}:down:${node}`,
            node: this.nodeId,
            at: Date.now(),
            down: node,
          },
          () => this.announcedDown.delete(node),
        );
      }
      await this.cmd.zrem(this.keys.nodes, node);
      await this.cmd.hdel(this.keys.applied, node);
      await this.cmd.hdel(this.keys.shares, node);
    }
  }
}

/**
 * What of a command goes on the log: a proposal's update as the submitting node decoded it
 * stays there (the lease holder decodes the frame it carries when it closes; a 4·d-byte array
 * would be ~32× the 1-bit frame).
 */
function onTheLog(command: Command): Command {
  if (command.kind !== 'proposal') return command;
  const { update: _update, ...carried } = command;
  return carried;
}

/**
 * A batch of commands as one log entry: JSON (field `b`) whose only binary field, a command's
 * `frame` (proposals, closes), is replaced by `frameAt: [offset, length]` into the batch's
 * frames, concatenated in one binary field (`f`). Parsed without a reviver: every node parses
 * every entry, and a reviver called on every key was the largest part of that; and no base64,
 * which every node decoded for every proposal of every iteration.
 */
export function encodeCommands(commands: readonly Command[]): { json: string; frames: Buffer } {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const json = JSON.stringify(
    commands.map((command) => {
      if (!('frame' in command)) return command;
      const { frame, ...rest } = command;
      parts.push(frame);
      const frameAt = [offset, frame.byteLength];
      offset += frame.byteLength;
      return { ...rest, frameAt };
    }),
  );
  return { json, frames: Buffer.concat(parts, offset) };
}

/**
 * The commands of a log entry; each frame copied to offset 0 of its own buffer (the codecs read
 * aligned views). `frames`: the entry's `f` field; entries written before it carry their frames
 * as base64 (`frame64`).
 */
export function decodeCommands(text: string, frames?: Uint8Array): Command[] {
  const parsed = JSON.parse(text) as (Command & { frame64?: string; frameAt?: unknown })[];
  if (!Array.isArray(parsed)) throw new Error('a log entry batch is not an array');
  return parsed.map((command) => {
    if (command.frameAt !== undefined) {
      const { frameAt, ...rest } = command;
      const [offset, length] = Array.isArray(frameAt) ? (frameAt as unknown[]) : [];
      if (
        frames === undefined ||
        typeof offset !== 'number' ||
        typeof length !== 'number' ||
        !Number.isInteger(offset) ||
        !Number.isInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset + length > frames.byteLength
      )
        throw new Error(`a frame outside the entry's frames: ${JSON.stringify(frameAt)}`);
      const frame = new Uint8Array(length);
      frame.set(frames.subarray(offset, offset + length));
      return { ...rest, frame } as Command;
    }
    if (typeof command.frame64 !== 'string') return command;
    const { frame64, ...rest } = command;
    return { ...rest, frame: new Uint8Array(Buffer.from(frame64, 'base64')) } as Command;
  });
}

/** JSON with typed arrays as tagged base64 (frames, parameters, residuals). */
export function encode(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key, v: unknown) {
    const original = key === '' ? v : this[key];
    if (original instanceof Float32Array)
      return {
        $f32: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString(
          'base64',
        ),
      };
    if (original instanceof Uint8Array)
      return {
        $u8: Buffer.from(original.buffer, original.byteOffset, original.byteLength).toString(
          'base64',
        ),
      };
    return v;
  });
}

export function decode(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (typeof v === 'object' && v !== null) {
      const tagged = v as { $f32?: unknown; $u8?: unknown };
      if (typeof tagged.$f32 === 'string') {
        const bytes = Buffer.from(tagged.$f32, 'base64');
        const out = new Float32Array(bytes.byteLength / 4);
        new Uint8Array(out.buffer).set(bytes);
        return out;
      }
      if (typeof tagged.$u8 === 'string') return new Uint8Array(Buffer.from(tagged.$u8, 'base64'));
    }
    return v;
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
