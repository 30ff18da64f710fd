/**
 * The coordinator's side of vouchers (core swarm/voucher.ts): the swarm's secret, each tab's
 * voucher key for its welcome, and the check of the vouchers a proposer brings. HMAC runs on
 * node:crypto here (about 5× core's portable implementation, which the tabs use; the test
 * checks both agree): at 10,000 tabs a close checks ~8,750 vouchers.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { voucherMessage, vouchKeyMessage, type VoucherFields } from '@swarmgrad/core';

/** Tabs whose keys are kept at most; beyond, the cache starts again (keys are recomputed). */
const KEY_CACHE_LIMIT = 100_000;

export class VoucherKeys {
  private secret: Buffer;
  private readonly keys = new Map<string, Buffer>();

  /** `secretHex`: 32 bytes in hex (SWARMGRAD_VOUCH_SECRET), or random. */
  constructor(secretHex?: string) {
    this.secret = secretHex === undefined ? randomBytes(32) : parseSecret(secretHex);
  }

  /** The secret in hex, for the replica every node of a swarm shares. */
  exportSecret(): string {
    return this.secret.toString('hex');
  }

  importSecret(secretHex: string): void {
    const next = parseSecret(secretHex);
    if (next.equals(this.secret)) return;
    this.secret = next;
    this.keys.clear();
  }

  /** The tab's voucher key in hex (its welcome's `vouchKey`). */
  keyHexFor(tabId: string): string {
    return this.keyFor(tabId).toString('hex');
  }

  /** Whether `mac` is the voucher MAC of tab `tabId` over `fields`. */
  verify(tabId: string, fields: VoucherFields, mac: string): boolean {
    const expected = createHmac('sha256', this.keyFor(tabId))
      .update(voucherMessage(fields))
      .digest('hex');
    // both are 64 hex digits (the schema checked `mac`); a MAC is not secret once sent
    return expected === mac;
  }

  private keyFor(tabId: string): Buffer {
    let key = this.keys.get(tabId);
    if (key === undefined) {
      if (this.keys.size >= KEY_CACHE_LIMIT) this.keys.clear();
      key = createHmac('sha256', this.secret).update(vouchKeyMessage(tabId)).digest();
      this.keys.set(tabId, key);
    }
    return key;
  }
}

function parseSecret(hex: string): Buffer {
  if (!/^[0-9a-f]{64}$/i.test(hex)) {
    throw new Error('the voucher secret must be 32 bytes in hex (64 hex digits)');
  }
  return Buffer.from(hex, 'hex');
}
