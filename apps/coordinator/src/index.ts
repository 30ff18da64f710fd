export {
  Coordinator,
  type CoordinatorOptions,
  type EvaluationPoint,
  type LogEvent,
} from './coordinator.ts';
export { ConfigError, loadJob, parseJob } from './config.ts';
