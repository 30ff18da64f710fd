export {
  Coordinator,
  HEARTBEAT,
  type CoordinatorOptions,
  type Dissemination,
  type Heartbeat,
  type EvaluationPoint,
  type LogEvent,
} from './coordinator.ts';
export { ConfigError, loadJob, parseJob } from './config.ts';
export type { AddressOptions } from './addresses.ts';
export { checkIceOptions, type IceOptions } from './ice.ts';
export { encodeIdx } from './pack/idx.ts';
export { newSigningKey, publicKeyOf } from './signing-key.ts';
