/**
 * The test tabs of apps/coordinator/test (fake workers, client tabs) exchange no registers, so
 * they cannot recompute a peer's proposal the way core's ClusterRound does. Instead a
 * proposer records here the digest of the frame it sent, and an honest member answers a confirm
 * request with it, as an honest member computing the same update would. Shared by every test tab
 * of this process; tab ids are random, so no coordinator is needed in the key.
 */
import { frameDigest } from '@swarmgrad/core';
import { parseFrame, type ConfirmRequest } from '@swarmgrad/protocol';

const digests = new Map<string, string>();

const key = (clusterId: number, iteration: number, proposer: string) =>
  `${clusterId}|${iteration}|${proposer}`;

export const proposalBoard = {
  /** The digest of "another update": what a contradicting member answers. */
  contradiction: '0'.repeat(64),
  record(clusterId: number, proposer: string, frame: Uint8Array): void {
    const parsed = parseFrame(frame);
    if (parsed.ok)
      digests.set(key(clusterId, parsed.value.header.iteration, proposer), frameDigest(frame));
  },
  lookup(request: ConfirmRequest): string | undefined {
    return digests.get(key(request.clusterId, request.iteration, request.proposer));
  },
};
