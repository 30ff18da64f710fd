import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deriveVouchKey,
  signVoucher,
  voucherMessage,
  vouchKeyMessage,
  type VoucherFields,
} from '../src/swarm/voucher.ts';

const hmacHex = (key: Uint8Array | Buffer, message: string) =>
  createHmac('sha256', key).update(message).digest('hex');

const fields = fc.record({
  jobId: fc.nat(),
  clusterId: fc.nat(),
  iteration: fc.nat(),
  proposer: fc.string({ minLength: 1, maxLength: 64 }),
  digest: fc.stringMatching(/^[0-9a-f]{64}$/),
});

describe('vouchers', () => {
  it("are HMAC-SHA256 as node:crypto computes it (the coordinator checks them with node's)", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.string({ minLength: 1, maxLength: 64 }),
        fields,
        (secret, tabId, v) => {
          const key = deriveVouchKey(secret, tabId);
          expect(key).toBe(hmacHex(secret, vouchKeyMessage(tabId)));
          expect(signVoucher(key, v)).toBe(hmacHex(Buffer.from(key, 'hex'), voucherMessage(v)));
        },
      ),
      { numRuns: 50 },
    );
  });

  it('bind every field and the member: change one and the MAC changes', () => {
    const secret = new Uint8Array(32).fill(9);
    const base: VoucherFields = {
      jobId: 7,
      clusterId: 3,
      iteration: 41,
      proposer: 'tab-a',
      digest: 'a'.repeat(64),
    };
    const key = deriveVouchKey(secret, 'tab-b');
    const mac = signVoucher(key, base);
    const variants: VoucherFields[] = [
      { ...base, jobId: 8 },
      { ...base, clusterId: 4 },
      { ...base, iteration: 42 },
      { ...base, proposer: 'tab-c' },
      { ...base, digest: 'b'.repeat(64) },
      // the fields run together differently, the same characters
      { ...base, clusterId: 34, iteration: 1 },
    ];
    for (const v of variants) expect(signVoucher(key, v)).not.toBe(mac);
    // another member's key, or another swarm's secret
    expect(signVoucher(deriveVouchKey(secret, 'tab-c'), base)).not.toBe(mac);
    expect(signVoucher(deriveVouchKey(new Uint8Array(32).fill(8), 'tab-b'), base)).not.toBe(mac);
  });
});
