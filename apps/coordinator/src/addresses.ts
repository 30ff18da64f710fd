/**
 * Where a tab connects from, and how many new tabs one network address may open.
 *
 * Anyone can open the volunteer URL, and a cluster's majority confirms its proposals and
 * quarantines its members: one client opening many tabs must not own a cluster. So each tab
 * gets an address group at hello — its client address cut to a prefix (IPv4 /32, IPv6 /64
 * by default) — which placement caps per cluster (packages/core/src/placement), and joins
 * per group are rate-limited here.
 *
 * The client address is the socket's remote address; only when that address is a proxy the
 * operator trusts (`--trust-proxy`) is the proxy's header believed: X-Forwarded-For's
 * rightmost hop that is not itself a trusted proxy (what the proxy saw, not what the client
 * wrote), or one configured header (X-Real-IP, CF-Connecting-IP …). Addresses in the exempt
 * ranges (default: loopback, private and link-local ones, and this host's own addresses: the
 * operator's own network and machine, CI, tests) form no group and are not join-limited.
 */
import { BlockList, isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { IncomingHttpHeaders } from 'node:http';
import { RateLimiterMemory } from 'rate-limiter-flexible';

export interface AddressOptions {
  /** Proxies (addresses or CIDRs) whose client-address header is believed. Default none. */
  trustProxy?: readonly string[];
  /** Header naming the client (lower case); default `x-forwarded-for`. */
  clientHeader?: string;
  /** Prefix lengths that make one group: default 32 (IPv4) and 64 (IPv6). */
  ipv4Prefix?: number;
  ipv6Prefix?: number;
  /**
   * Addresses or CIDRs that form no group; `private` (PRIVATE_RANGES), `self` (this host's
   * interface addresses), `none`. Default `private,self`.
   */
  exempt?: readonly string[];
  /** New tabs one group may open per minute on average, and at once. */
  joinsPerMinute?: number;
  joinBurst?: number;
}

/** Loopback, RFC 1918, link-local and unique-local ranges. */
export const PRIVATE_RANGES = [
  '127.0.0.0/8',
  '10.0.0.0/8',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '169.254.0.0/16',
  '::1/128',
  'fc00::/7',
  'fe80::/10',
] as const;

export const addressDefaults = {
  clientHeader: 'x-forwarded-for',
  ipv4Prefix: 32,
  ipv6Prefix: 64,
  exempt: ['private', 'self'],
  joinsPerMinute: 20,
  joinBurst: 10,
} as const;

/** This host's interface addresses (a tab opened on the coordinator's own machine). */
function ownAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) =>
    (list ?? []).flatMap((item) => {
      const address = normalizeAddress(item.address);
      return address === undefined ? [] : [address];
    }),
  );
}

/**
 * A ranges list: addresses, CIDRs, `private` (PRIVATE_RANGES), `self` (this host's own
 * addresses, read now) or `none`. Throws on bad.
 */
export function blockListOf(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  const expand = (r: string): string[] =>
    r === 'private' ? [...PRIVATE_RANGES] : r === 'self' ? ownAddresses() : [r];
  for (const raw of ranges.flatMap(expand)) {
    const item = raw.trim();
    if (item === '' || item === 'none') continue;
    const [address, bits, extra] = item.split('/');
    const family = isIP(address ?? '');
    const max = family === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (
      family === 0 ||
      extra !== undefined ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > max
    )
      throw new RangeError(`not an address or CIDR: ${item}`);
    list.addSubnet(address!, prefix, family === 4 ? 'ipv4' : 'ipv6');
  }
  return list;
}

/**
 * An address as written in a socket or a header, without brackets, port or IPv4-mapped
 * prefix; undefined when it is not an IP address.
 */
export function normalizeAddress(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  text = text.replace(/%.*$/, ''); // zone index
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped) text = mapped[1]!;
  return isIP(text) === 0 ? undefined : text.toLowerCase();
}

function familyOf(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 4 ? 'ipv4' : 'ipv6';
}

/** The network of `address` at `prefix` bits, as a key: `203.0.113.0/24`, `2001:db8:0:0:0:0:0:0/64`. */
export function networkOf(address: string, prefix: number): string {
  if (isIP(address) === 4) {
    const value = address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
    const size = 2 ** (32 - prefix);
    const network = Math.floor(value / size) * size;
    const parts = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256);
    return `${parts.join('.')}/${prefix}`;
  }
  const hextets = expandIpv6(address);
  const out = hextets.map((h, i) => {
    const keep = Math.max(0, Math.min(16, prefix - 16 * i));
    const mask = keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
    return (h & mask).toString(16);
  });
  return `${out.join(':')}/${prefix}`;
}

function expandIpv6(address: string): number[] {
  let text = address;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1]!.split('.').map(Number);
    text = `${text.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...new Array<string>(zeros).fill('0'), ...right].map((h) => parseInt(h, 16));
}

/** Turns a connection into its client address and address group, and limits joins per group. */
export class AddressGate {
  private readonly trusted: BlockList;
  private readonly exempt: BlockList;
  private readonly header: string;
  private readonly ipv4Prefix: number;
  private readonly ipv6Prefix: number;
  private readonly joins: RateLimiterMemory;
  readonly joinsPerMinute: number;
  readonly joinBurst: number;
  private readonly hasTrusted: boolean;
  private untrustedHeaderSeen = false;

  /**
   * `onUntrustedHeader` runs once, the first time a client-address header arrives from an
   * address that is not a trusted proxy (an operator behind a proxy who forgot --trust-proxy).
   */
  constructor(
    options: AddressOptions = {},
    private readonly onUntrustedHeader: () => void = () => undefined,
  ) {
    this.hasTrusted = (options.trustProxy ?? []).some((r) => r.trim() !== '' && r !== 'none');
    this.trusted = blockListOf(options.trustProxy ?? []);
    this.exempt = blockListOf(options.exempt ?? addressDefaults.exempt);
    this.header = (options.clientHeader ?? addressDefaults.clientHeader).toLowerCase();
    this.ipv4Prefix = options.ipv4Prefix ?? addressDefaults.ipv4Prefix;
    this.ipv6Prefix = options.ipv6Prefix ?? addressDefaults.ipv6Prefix;
    if (!Number.isInteger(this.ipv4Prefix) || this.ipv4Prefix < 0 || this.ipv4Prefix > 32)
      throw new RangeError(`IPv4 prefix ${this.ipv4Prefix}: 0-32`);
    if (!Number.isInteger(this.ipv6Prefix) || this.ipv6Prefix < 0 || this.ipv6Prefix > 128)
      throw new RangeError(`IPv6 prefix ${this.ipv6Prefix}: 0-128`);
    this.joinsPerMinute = options.joinsPerMinute ?? addressDefaults.joinsPerMinute;
    this.joinBurst = options.joinBurst ?? addressDefaults.joinBurst;
    if (!(this.joinsPerMinute > 0) || !Number.isInteger(this.joinBurst) || this.joinBurst < 1)
      throw new RangeError('joins per minute must be > 0 and the join burst an integer ≥ 1');
    // a window of `burst` joins that refills at the average rate (as the event limiter does)
    this.joins = new RateLimiterMemory({
      points: this.joinBurst,
      duration: Math.max(1, Math.round((this.joinBurst * 60) / this.joinsPerMinute)),
    });
  }

  private isTrusted(address: string): boolean {
    return this.hasTrusted && this.trusted.check(address, familyOf(address));
  }

  /** The client's address: the remote one, or what a trusted proxy says it forwarded. */
  clientAddress(remote: string, headers: IncomingHttpHeaders): string | undefined {
    const direct = normalizeAddress(remote);
    if (direct === undefined) return undefined;
    const value = headers[this.header];
    const text = Array.isArray(value) ? value.join(',') : value;
    if (!this.isTrusted(direct)) {
      if (text !== undefined && !this.untrustedHeaderSeen) {
        this.untrustedHeaderSeen = true;
        this.onUntrustedHeader();
      }
      return direct;
    }
    if (text === undefined) return direct;
    if (this.header !== 'x-forwarded-for') return normalizeAddress(text.split(',')[0]) ?? direct;
    // rightmost first: each trusted proxy appended the address it saw
    let client = direct;
    const hops = text.split(',').reverse();
    for (const hop of hops) {
      const address = normalizeAddress(hop);
      if (address === undefined) break; // garbage left of the proxies: keep the last good hop
      client = address;
      if (!this.isTrusted(address)) break;
    }
    return client;
  }

  /** The group of a client address; undefined for exempt or unknown addresses. */
  groupOf(address: string | undefined): string | undefined {
    if (address === undefined) return undefined;
    const family = familyOf(address);
    if (this.exempt.check(address, family)) return undefined;
    return networkOf(address, family === 'ipv4' ? this.ipv4Prefix : this.ipv6Prefix);
  }

  /** Counts one new tab of `group`; false when the group is over its join rate. */
  async admitJoin(group: string): Promise<{ ok: true } | { ok: false; retryInMs: number }> {
    try {
      await this.joins.consume(group);
      return { ok: true };
    } catch (result) {
      const ms = (result as { msBeforeNext?: number }).msBeforeNext;
      return { ok: false, retryInMs: typeof ms === 'number' ? ms : 60_000 };
    }
  }
}
