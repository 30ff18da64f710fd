/**
 * Vouchers: a cluster member's confirmation of its proposer's proposal, signed so the proposer
 * can carry it to the coordinator but not forge or alter it (docs/architecture.md,
 * _Confirmations bundled by the proposer_).
 *
 * Guarantee. The coordinator derives each tab's voucher key from a secret only coordinator
 * nodes hold, key = HMAC-SHA256(secret, "swarmgrad-vouch-key/1|" + tabId), and hands it to that
 * tab alone (its welcome). A voucher's MAC is HMAC-SHA256(key, voucherMessage(...)): it binds
 * the job, cluster, base iteration, proposer and frame digest, so it counts for that one
 * proposal of that one member and nothing else; without the member's key (or the secret) no tab
 * can make one. A proposer may leave vouchers out — then the coordinator asks the members it
 * lacks, as before — but cannot add one the member did not sign.
 *
 * Parameters: the secret (32 random bytes per swarm; shared by its nodes), the tab id.
 * Paper: none (HMAC, RFC 2104); the confirmation it carries is swarm/proposal.ts's.
 */
import { hmac } from '@noble/hashes/hmac.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

export interface VoucherFields {
  jobId: number;
  clusterId: number;
  /** The proposal's base iteration. */
  iteration: number;
  proposer: string;
  /** SHA-256 of the proposal frame the member computed (frameDigest). */
  digest: string;
}

/** The bytes a voucher's MAC covers, as text (one format, one version). */
export function voucherMessage(v: VoucherFields): string {
  return `swarmgrad-voucher/1|${v.jobId}|${v.clusterId}|${v.iteration}|${v.proposer}|${v.digest}`;
}

/** What a tab's voucher key is derived from (with the swarm's secret as the HMAC key). */
export function vouchKeyMessage(tabId: string): string {
  return `swarmgrad-vouch-key/1|${tabId}`;
}

function hmacHex(key: Uint8Array, message: string): string {
  return bytesToHex(hmac(sha256, key, new TextEncoder().encode(message)));
}

/** A tab's voucher key, hex (the coordinator computes it; tests too). */
export function deriveVouchKey(secret: Uint8Array, tabId: string): string {
  return hmacHex(secret, vouchKeyMessage(tabId));
}

/** The MAC a member with voucher key `keyHex` puts on its voucher. */
export function signVoucher(keyHex: string, fields: VoucherFields): string {
  return hmacHex(hexToBytes(keyHex), voucherMessage(fields));
}
