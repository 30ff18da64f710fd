/**
 * Ed25519 keys that Node 20 cannot deadlock on.
 *
 * A key that generateKeyPairSync returns shares its lock with the key-generation job behind the
 * call. When a garbage collection destroys that job while an export of the key holds the lock
 * (the JWK export allocates its strings under it), the job's destructor waits for the lock on
 * the same thread, forever: a coordinator hung this way in the unit tests (gdb: ~KeyGenJob
 * under ExportJWKEdKey); under `node --gc-interval` 7 of 12 runs of 1,000 such keys hung
 * (apps/coordinator/test/signing-key.test.ts, with the unsafe keys). A key imported from its DER
 * has a lock of its own, which no job ever holds.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';

/** A fresh Ed25519 private key, safe to export while garbage is collected. */
export function newSigningKey(): KeyObject {
  const { privateKey } = generateKeyPairSync('ed25519', {
    privateKeyEncoding: { format: 'der', type: 'pkcs8' },
    publicKeyEncoding: { format: 'der', type: 'spki' },
  });
  return createPrivateKey({ key: privateKey, format: 'der', type: 'pkcs8' });
}

/** The public key of an Ed25519 private key, raw, base64url (the welcome's `iterationKey`). */
export function publicKeyOf(privateKey: KeyObject): string {
  return createPublicKey(privateKey).export({ format: 'jwk' }).x!;
}
