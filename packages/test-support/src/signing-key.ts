/** The coordinator's Ed25519 keys for tests that sign iteration frames (apps/coordinator signing-key.ts). */
export { newSigningKey, publicKeyOf } from '@swarmgrad/coordinator';
