/**
 * The ICE servers a tab gets in its welcome: the operator's STUN servers as they are, and TURN
 * servers with short-lived credentials derived from a secret the coordinator shares with the
 * TURN server, never a static password in the page.
 *
 * TURN REST API scheme (draft-uberti-behave-turn-rest-00, what coturn implements with
 * `use-auth-secret` + `static-auth-secret`):
 *   username   = `<expiry, unix seconds>:<tabId>`
 *   credential = base64(HMAC-SHA1(secret, username))
 * The TURN server recomputes the credential from the username and refuses it once the expiry
 * has passed, so a credential copied out of a tab is worth nothing after `ttlSeconds`.
 * A tab gets fresh credentials with every welcome (each reconnect), and a connected tab gets
 * them again (`ice-servers`) every `refreshSeconds` (default half the lifetime), so a tab that
 * stays connected for days can still open TURN links when its cluster changes.
 */
import { createHmac } from 'node:crypto';
import { iceServersSchema, type IceServer } from '@swarmgrad/protocol';

export interface IceOptions {
  /** STUN URLs (`stun:host:3478`), handed out as they are. */
  stun: string[];
  /** TURN URLs (`turn:host:3478?transport=udp`, `turns:host:5349?transport=tcp`). */
  turn: string[];
  /** The TURN server's shared secret (coturn `static-auth-secret`); required with `turn`. */
  turnSecret?: string;
  /** How long a TURN credential is valid (default 86 400 s, the draft's recommendation). */
  turnTtlSeconds?: number;
  /** How often a connected tab gets fresh TURN credentials (default half the lifetime). */
  refreshSeconds?: number;
}

export const defaultTurnTtlSeconds = 86_400;

export class IceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IceConfigError';
  }
}

/** Checks the operator's ICE options; throws IceConfigError with a one-line reason. */
export function checkIceOptions(options: IceOptions): IceOptions {
  for (const url of options.stun)
    if (!/^stuns?:[^\s]+$/.test(url)) throw new IceConfigError(`not a stun: URL: ${url}`);
  for (const url of options.turn)
    if (!/^turns?:[^\s]+$/.test(url)) throw new IceConfigError(`not a turn: URL: ${url}`);
  if (options.turn.length > 0 && !options.turnSecret)
    throw new IceConfigError(
      'TURN servers need the shared secret (SWARMGRAD_TURN_SECRET or --turn-secret-file): a static TURN password would be published to every tab',
    );
  const ttl = options.turnTtlSeconds ?? defaultTurnTtlSeconds;
  if (!Number.isInteger(ttl) || ttl < 60 || ttl > 7 * 86_400)
    throw new IceConfigError(`TURN credential lifetime must be 60 s to 7 days, got ${ttl}`);
  const refresh = options.refreshSeconds;
  if (refresh !== undefined && !(refresh > 0 && refresh < ttl))
    throw new IceConfigError(`TURN credential refresh must be within the lifetime (${ttl} s)`);
  // what the tab will validate: fail at start, not at the first welcome
  const sample = iceServersFor(options, 'tab-check', 0);
  const parsed = iceServersSchema.safeParse(sample);
  if (!parsed.success)
    throw new IceConfigError(`ICE servers: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return options;
}

/** TURN REST API credentials for `user`, valid until `nowMs / 1000 + ttlSeconds`. */
export function turnCredentials(
  secret: string,
  user: string,
  ttlSeconds: number,
  nowMs: number = Date.now(),
): { username: string; credential: string; expiresAt: number } {
  const expiresAt = Math.floor(nowMs / 1000) + ttlSeconds;
  const username = `${expiresAt}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAt };
}

/** The RTCIceServer list for one tab (empty without options: host candidates only). */
export function iceServersFor(
  options: IceOptions | undefined,
  tabId: string,
  nowMs: number = Date.now(),
): IceServer[] {
  if (!options) return [];
  const servers: IceServer[] = [];
  if (options.stun.length > 0) servers.push({ urls: options.stun });
  if (options.turn.length > 0 && options.turnSecret) {
    const { username, credential } = turnCredentials(
      options.turnSecret,
      tabId,
      options.turnTtlSeconds ?? defaultTurnTtlSeconds,
      nowMs,
    );
    servers.push({ urls: options.turn, username, credential });
  }
  return servers;
}

/** The welcome's `iceServers` field: absent when the operator configured none. */
export function welcomeIce(
  options: IceOptions | undefined,
  tabId: string,
): { iceServers?: IceServer[] } {
  const servers = iceServersFor(options, tabId);
  return servers.length > 0 ? { iceServers: servers } : {};
}

/** Milliseconds between credential refreshes for a connected tab; undefined without TURN. */
export function iceRefreshMs(options: IceOptions | undefined): number | undefined {
  if (!options || options.turn.length === 0 || !options.turnSecret) return undefined;
  const ttl = options.turnTtlSeconds ?? defaultTurnTtlSeconds;
  return (options.refreshSeconds ?? ttl / 2) * 1000;
}
