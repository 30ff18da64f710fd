/**
 * Proposals no single tab controls (issue 13, item 0): the cluster's proposal is confirmed by a
 * majority of the cluster's live members before the coordinator counts it.
 *
 * Guarantee. The cluster update is a deterministic function of the registers it aggregates and
 * the rule (ClusterRound.recompute), and the proposal frame is a deterministic function of the
 * update (`encodeProposal`: the job's codec without error feedback, a fixed seed, a fixed
 * header). So every honest member that holds the same input registers computes the same frame,
 * byte for byte, and its SHA-256 (`frameDigest`). The coordinator counts a proposal only when
 * the proposer plus the members that computed the digest of the received frame make a majority
 * of the cluster's live members (`judgeProposal`); a proposer whose frame a majority of the
 * other live members contradicts with one common digest is refuted (its frame is not what the
 * registers give). A single lying tab therefore can neither get its own frame counted (as
 * proposer) nor get an honest proposer refuted (as a confirmer) in a cluster of three or more
 * live members; registers someone sent in two versions (equivocation) show up as a digest
 * mismatch of the input, and the members abstain instead of blaming the proposer.
 *
 * Parameters: the job's codec and block size; the live members at judgement time, and the
 * minimum the majority is taken of (the coordinator passes half the cluster's seats).
 *
 * Cost: proposals lose error feedback (a residual no member can reproduce); the registers keep
 * theirs, and the coordinator's delta keeps its own. See docs/architecture.md.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { PROPOSAL_SLOT, type CodecName } from '@swarmgrad/protocol';
import { encodeToFrame, getCodec } from '../codec/index.ts';
import { majorityOf } from '../agreement.ts';

/** SHA-256 of a frame's bytes, lower-case hex. */
export function frameDigest(frame: Uint8Array): string {
  return bytesToHex(sha256(frame));
}

export interface ProposalEncoding {
  codec: CodecName;
  blockSize: number;
  jobId: number;
  clusterId: number;
  /** The base iteration the update was computed on. */
  iteration: number;
  /** The largest staleness of the registers it aggregates (pipelined tabs; default 0). */
  staleness?: number;
  /** The mean step delay of the registers it aggregates (ClusterRound.inputAge; default: staleness). */
  stepDelay?: number;
}

/**
 * The proposal frame of `update`: the job's codec with no error feedback and a seed fixed by
 * (job, cluster, iteration), so every member encoding the same update gets the same bytes.
 */
export function encodeProposal(update: Float32Array, encoding: ProposalEncoding): Uint8Array {
  const codec = getCodec(encoding.codec);
  const encoder = codec.createEncoder(update.length, {
    ...(codec.defaultBlockSize > 0 ? { blockSize: encoding.blockSize } : {}),
    errorFeedback: false,
    seed: proposalSeed(encoding),
  });
  return encodeToFrame(encoder, update, {
    jobId: encoding.jobId,
    iteration: encoding.iteration,
    round: 0,
    senderSlot: PROPOSAL_SLOT,
    staleness: encoding.staleness ?? 0,
    ...(encoding.stepDelay === undefined ? {} : { stepDelay: encoding.stepDelay }),
  });
}

function proposalSeed(e: ProposalEncoding): number {
  let h = 0x811c9dc5;
  for (const v of [e.jobId >>> 0, e.clusterId >>> 0, e.iteration >>> 0]) {
    h = Math.imul(h ^ v, 0x01000193) >>> 0;
  }
  return h;
}

/** What one member answered: the digest it computed, or that it could not judge. */
export type MemberAnswer = { kind: 'computed'; digest: string } | { kind: 'abstain' };

export type ProposalVerdict =
  /** The proposer and the members that computed its digest are a majority of the live members. */
  | { kind: 'confirmed'; confirmedBy: string[] }
  /** More than half of the other live members computed one common other digest. */
  | { kind: 'refuted'; refutedBy: string[]; digest: string }
  /** Every live member answered (or the time is up) and neither holds. */
  | { kind: 'unconfirmed' }
  | { kind: 'waiting' };

/**
 * Judges a proposal from the answers so far.
 * - `proposer`: the proposing tab; `liveMembers`: the cluster's live members now (the proposer
 *   included when it is live; a proposer that left still proposed, but does not count).
 * - `answers`: by tab id; answers of tabs that are not live members now are ignored.
 * - `final`: no more answers will be waited for (timeout): waiting becomes unconfirmed.
 */
export function judgeProposal(input: {
  digest: string;
  proposer: string;
  liveMembers: readonly string[];
  answers: ReadonlyMap<string, MemberAnswer>;
  final?: boolean;
  /**
   * The majority is taken of at least this many members (default 1): with half the seats of a
   * cluster of four as minimum, a proposer alone, or with one member, needs that member.
   */
  minimumLive?: number;
}): ProposalVerdict {
  const live = new Set(input.liveMembers);
  const others = input.liveMembers.filter((id) => id !== input.proposer);
  const needed = majorityOf(Math.max(1, live.size, input.minimumLive ?? 1));
  const confirmedBy: string[] = [];
  const against = new Map<string, string[]>();
  let answered = 0;
  for (const id of others) {
    const answer = input.answers.get(id);
    if (answer === undefined) continue;
    answered++;
    if (answer.kind !== 'computed') continue;
    if (answer.digest === input.digest) confirmedBy.push(id);
    else against.set(answer.digest, [...(against.get(answer.digest) ?? []), id]);
  }
  const proposerCounts = live.has(input.proposer) ? 1 : 0;
  if (proposerCounts + confirmedBy.length >= needed) {
    return { kind: 'confirmed', confirmedBy: confirmedBy.sort() };
  }
  for (const [digest, ids] of against) {
    if (2 * ids.length > others.length) return { kind: 'refuted', refutedBy: ids.sort(), digest };
  }
  // can the remaining answers still confirm it?
  const pending = others.length - answered;
  if (pending > 0 && !input.final && proposerCounts + confirmedBy.length + pending >= needed) {
    return { kind: 'waiting' };
  }
  // or refute it?
  if (pending > 0 && !input.final) {
    for (const ids of against.values()) {
      if (2 * (ids.length + pending) > others.length) return { kind: 'waiting' };
    }
    if (against.size === 0 && 2 * pending > others.length) return { kind: 'waiting' };
  }
  return { kind: 'unconfirmed' };
}
