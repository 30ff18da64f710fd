/**
 * The held-out evaluation thread (node:worker_threads), started by evaluator.ts. It owns one
 * model built from the job's spec and the held-out samples, and answers one evaluation per
 * message, in arrival order, so the coordinator's event loop never runs a forward pass.
 *
 * Backend: the wasm backend when `backend` is 'wasm' or 'auto' and it initialises in this
 * Node, else cpu; the one in use is reported in the 'ready' message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { buildModel, evaluate, parameterCount, setFlatParameters } from '@swarmgrad/model';
import type { EvaluatorThreadData, FromThread, ToThread } from './evaluator.ts';

async function chooseBackend(preference: EvaluatorThreadData['backend']): Promise<'wasm' | 'cpu'> {
  if (preference !== 'cpu') {
    try {
      if (await tf.setBackend('wasm')) {
        await tf.ready();
        // one tiny op proves the kernels run, not just that the module loaded
        tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)).dataSync());
        return 'wasm';
      }
    } catch {
      // fall through to cpu
    }
  }
  if (!(await tf.setBackend('cpu'))) throw new Error('neither the wasm nor the cpu backend works');
  await tf.ready();
  return 'cpu';
}

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('evaluator-thread.ts must run in a worker thread');
  const data = workerData as EvaluatorThreadData;
  const send = (message: FromThread) => port.postMessage(message);
  try {
    // the "install tfjs-node" banner and debug checks are noise in a service thread
    tf.enableProdMode();
    const backend = await chooseBackend(data.backend);
    const model = buildModel(data.model);
    const { xs, labels, count } = data.heldOut;
    port.on('message', (message: ToThread) => {
      if (message.type !== 'evaluate') return;
      const started = performance.now();
      try {
        setFlatParameters(model, message.params);
        const { loss, accuracy } = evaluate(model, xs, labels, count);
        send({
          type: 'result',
          id: message.id,
          iteration: message.iteration,
          loss,
          accuracy,
          ms: performance.now() - started,
        });
      } catch (error) {
        send({ type: 'failed', id: message.id, message: String(error) });
      }
    });
    send({ type: 'ready', backend, parameters: parameterCount(model) });
  } catch (error) {
    send({ type: 'start-failed', message: String(error) });
  }
}

void main();
