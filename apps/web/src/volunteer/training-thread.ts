/**
 * The training thread's script (a dedicated module worker, built by Vite from this entry):
 * packages/worker's training-thread.ts serves the page's messages here. worker-factory.ts starts
 * it for a pipelined job on the wasm backend.
 */
import { serveTrainingThread, type TrainingThreadScope } from '@swarmgrad/worker/thread';

serveTrainingThread(self as unknown as TrainingThreadScope);
