/**
 * The closed set of error codes that travel on the wire. Every rejection — a malformed frame,
 * a socket.io event that fails its schema, a signal to a tab outside the cluster — is answered
 * with one of these, never with a free-form string alone.
 */
export const errorCodes = [
  // binary frames and chunks
  'bad-magic',
  'unsupported-version',
  'truncated',
  'oversized',
  'checksum-mismatch',
  'unknown-codec',
  'bad-header',
  'missing-chunk',
  'duplicate-chunk',
  'bad-chunk',
  // content
  'dimension-mismatch',
  'non-finite',
  'wrong-job',
  'wrong-iteration',
  'stale',
  // events and sessions
  'invalid-message',
  'payload-too-large',
  'rate-limited',
  /** A hello refused: too many new tabs from one network address group (join rate limit). */
  'too-many-joins',
  'unauthorized',
  'not-in-cluster',
  /** A frame to relay for a pair of tabs whose link the coordinator does not relay. */
  'not-relayed',
  // proposals: only the cluster's designated proposer may propose, and a majority of the
  // cluster's live members must confirm what it proposed
  'not-proposer',
  'refuted',
  'unconfirmed',
  'unknown-tab',
  'fault-injection-disabled',
  'paused',
  'internal',
] as const;

export type ErrorCode = (typeof errorCodes)[number];

export interface ProtocolError {
  readonly code: ErrorCode;
  readonly message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ProtocolError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T = never>(code: ErrorCode, message: string): Result<T> {
  return { ok: false, error: { code, message } };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (errorCodes as readonly string[]).includes(value);
}
