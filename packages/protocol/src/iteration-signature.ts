/**
 * The coordinator's signature on iteration frames (iteration-frame.ts). With cluster
 * dissemination a tab receives most iteration frames from a peer (its cluster's relay), not from
 * the coordinator; the Ed25519 signature makes a forwarded frame as trustworthy as one from the
 * coordinator's socket: a relay may withhold a frame (the tab then asks the coordinator) but
 * cannot forge, alter or re-flag one. The key pair lives as long as the coordinator process; its
 * public key travels in every welcome as the raw 32 bytes in base64url (`iterationKey`).
 *
 * Verification uses Web Crypto's Ed25519 (browsers; Node >= 20), so the tab and the Node worker
 * share this code.
 */
import { iterationKeySchema } from './events.ts';
import type { ParsedIterationFrame } from './iteration-frame.ts';

/** A Web Crypto key (named structurally: the DOM's CryptoKey in a tab, Node's in Node). */
export type IterationKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

function fromBase64Url(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** The welcome's `iterationKey` as a Web Crypto verification key. */
export async function importIterationKey(encoded: string): Promise<IterationKey> {
  const checked = iterationKeySchema.safeParse(encoded);
  if (!checked.success) throw new RangeError('iteration key: not a base64url Ed25519 key');
  return crypto.subtle.importKey('raw', fromBase64Url(checked.data), { name: 'Ed25519' }, false, [
    'verify',
  ]);
}

/** Whether the coordinator holding `key` signed this frame as it is. */
export async function verifyIterationFrame(
  frame: Pick<ParsedIterationFrame, 'signed' | 'signature'>,
  key: IterationKey,
): Promise<boolean> {
  // Web Crypto wants buffers it may read whole: copies of the views
  return crypto.subtle.verify(
    { name: 'Ed25519' },
    key,
    frame.signature.slice(),
    frame.signed.slice(),
  );
}
