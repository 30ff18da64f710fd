/**
 * The tab's side of cluster dissemination (issue 17, item 2): a frame the coordinator flags
 * FORWARD is handed on (`forward`) and applied; a frame a peer forwards is applied only when the
 * coordinator's signature verifies under the welcome's key (a forged, altered or unsigned one is
 * dropped and counted); frames apply in arrival order whichever way they came; a tab that sees
 * no iteration for a while, or sees a peer computing on a newer base, asks the coordinator.
 * A real socket.io server plays the coordinator (support/fake-coordinator.ts).
 */
import { sign } from 'node:crypto';
import { newSigningKey, publicKeyOf } from '@swarmgrad/test-support/signing-key';
import { afterEach, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io';
import { encodeToFrame, getCodec } from '@swarmgrad/core';
import {
  allocateFrame,
  encodeIterationFrame,
  sealFrame,
  setIterationSignature,
  signedBytes,
} from '@swarmgrad/protocol';
import { waitFor } from '@swarmgrad/test-support/harness';
import type { BaseMoved } from '../src/client.ts';
import { fakeCoordinator, validWelcome } from './support/fake-coordinator.ts';

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

const DIMENSION = validWelcome.dimension;
const signer = newSigningKey();
const iterationKey = publicKeyOf(signer);

/** The agreed parameters at iteration 0 (zeros), as /api/params serves them. */
function paramsResponse(): Promise<Response> {
  const { bytes } = allocateFrame(
    {
      codec: 'fp32',
      jobId: validWelcome.jobId,
      iteration: 0,
      round: 0,
      senderSlot: 0,
      dimension: DIMENSION,
      blockSize: 0,
    },
    DIMENSION * 4,
  );
  return Promise.resolve(new Response(sealFrame(bytes)));
}

/** The frame moving the base to `iteration` by +`step` on every coordinate, signed by `key`. */
function iterationFrame(
  iteration: number,
  step: number,
  options: { forward?: boolean; key?: typeof signer | null } = {},
): Uint8Array {
  const encoder = getCodec('fp32').createEncoder(DIMENSION, {});
  const delta = encodeToFrame(encoder, new Float32Array(DIMENSION).fill(step), {
    jobId: validWelcome.jobId,
    iteration,
    round: 0,
    senderSlot: 0xffff,
  });
  const frame = encodeIterationFrame({ iteration, learningRate: 0.1, phase: 'training' }, delta, {
    forward: options.forward ?? false,
  });
  const key = options.key === undefined ? signer : options.key;
  if (key !== null) setIterationSignature(frame, sign(null, signedBytes(frame), key));
  return frame;
}

async function tab(minStallMs?: number) {
  const fake = await fakeCoordinator(
    { iterationKey, phase: 'training' },
    { fetch: paramsResponse, ...(minStallMs === undefined ? {} : { minStallMs }) },
  );
  closers.push(fake.close);
  const bases: BaseMoved[] = [];
  const forwarded: Uint8Array[] = [];
  const requests: unknown[] = [];
  fake.client.on('base', (moved) => bases.push(moved));
  fake.client.on('forward', (frame) => forwarded.push(frame));
  fake.client.start();
  const socket: Socket = await fake.socket;
  socket.on('iteration-request', (request: unknown) => requests.push(request));
  await waitFor(() => bases.some((b) => b.resynced), 'the base download');
  return { client: fake.client, socket, bases, forwarded, requests };
}

describe('iteration frames through the cluster', () => {
  it('hands on what the coordinator flags FORWARD, and applies it', async () => {
    const { client, socket, forwarded, bases } = await tab();
    socket.emit('iteration', Buffer.from(iterationFrame(1, 0.5, { forward: true })));
    socket.emit('iteration', Buffer.from(iterationFrame(2, 0.25)));
    await waitFor(() => client.iteration === 2, 'iteration 2');
    expect(forwarded).toHaveLength(1);
    expect(Array.from(client.base!)).toEqual(new Array(DIMENSION).fill(0.75));
    expect(bases.filter((b) => !b.resynced).map((b) => b.iteration)).toEqual([1, 2]);
  });

  it("applies a peer's frame only under the coordinator's signature, in arrival order", async () => {
    const { client, socket } = await tab();
    const other = newSigningKey();
    const altered = iterationFrame(1, 0.5);
    altered[16]! ^= 1; // the learning rate, after signing
    for (const bad of [
      iterationFrame(1, 9, { key: other }),
      iterationFrame(1, 9, { key: null }),
      altered,
    ]) {
      expect(client.acceptPeerIteration('peer-a', bad)).toBe(true);
    }
    expect(client.acceptPeerIteration('peer-a', new Uint8Array([1, 2, 3]))).toBe(false);
    await waitFor(() => client.peerIterationsRefused === 4, 'the refusals');
    expect(client.iteration).toBe(0);
    // a good peer frame for 1, then the socket's frame for 2 right behind it: 2 waits for 1
    expect(client.acceptPeerIteration('peer-a', iterationFrame(1, 0.5))).toBe(true);
    socket.emit('iteration', Buffer.from(iterationFrame(2, 0.25)));
    await waitFor(() => client.iteration === 2, 'iteration 2');
    expect(Array.from(client.base!)).toEqual(new Array(DIMENSION).fill(0.75));
    // the same frame again (another path) changes nothing
    client.acceptPeerIteration('peer-b', iterationFrame(2, 0.25));
    await new Promise((r) => setTimeout(r, 50));
    expect(Array.from(client.base!)).toEqual(new Array(DIMENSION).fill(0.75));
  });

  it('asks the coordinator when no iteration comes, and when a peer is ahead', async () => {
    const { client, socket, requests } = await tab(200);
    // no iteration for the stall time: the tab asks for what follows 0
    await waitFor(() => requests.length >= 1, 'a stall request', 5000);
    expect(requests[0]).toEqual({ after: 0 });
    socket.emit('iteration', Buffer.from(iterationFrame(1, 0.5)));
    await waitFor(() => client.iteration === 1, 'iteration 1');
    const before = requests.length;
    // a peer's register for iteration 3: after a moment the tab asks for what follows 1
    client.expectIteration(3);
    await waitFor(
      () => requests.slice(before).some((r) => JSON.stringify(r) === '{"after":1}'),
      'the request',
    );
  });

  it('fills a gap by asking for the missing frame, without downloading the parameters', async () => {
    const { client, socket, bases, requests } = await tab();
    // the coordinator answers a request with what it holds after `after`, in order
    const held = [iterationFrame(1, 0.5), iterationFrame(2, 0.25)];
    socket.on('iteration-request', ({ after }: { after: number }) => {
      for (const frame of held.slice(after)) socket.emit('iteration', Buffer.from(frame));
    });
    // a relay's frame for 1 is overtaken by the coordinator's frame for 2
    socket.emit('iteration', Buffer.from(held[1]!));
    await waitFor(() => client.iteration === 2, 'iteration 2');
    expect(requests).toEqual([{ after: 0 }]);
    expect(Array.from(client.base!)).toEqual(new Array(DIMENSION).fill(0.75));
    expect(bases.map((b) => [b.iteration, b.resynced])).toEqual([
      [0, true],
      [1, false],
      [2, false],
    ]);
    // the frame for 1 coming late from the relay changes nothing
    expect(client.acceptPeerIteration('relay', held[0]!)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(Array.from(client.base!)).toEqual(new Array(DIMENSION).fill(0.75));
  });

  it('downloads the parameters when nobody fills the gap in time', async () => {
    const { client, socket, bases, requests } = await tab();
    socket.emit('iteration', Buffer.from(iterationFrame(3, 0.5)));
    await waitFor(() => requests.length === 1, 'the request for the gap');
    expect(requests[0]).toEqual({ after: 0 });
    expect(client.iteration).toBe(0);
    await waitFor(() => bases.filter((b) => b.resynced).length === 2, 'the download', 8000);
  });
});
