/**
 * Attacks on a cluster's proposal (issue 13, item 0), as a tab that rewrites its outgoing
 * proposal frames would run them. Its register stays honest: what it forges is the cluster
 * update it proposes. The defence is core swarm/proposal.ts (members recompute the update and
 * contradict a forged one; only the designated proposer may propose).
 *
 * - `proposal-scale`: proposes PROPOSAL_FACTOR['proposal-scale'] (×100) times the cluster update.
 * - `proposal-flip`:  proposes PROPOSAL_FACTOR['proposal-flip'] (−4×) times the cluster update.
 * - `proposal-race`:  proposes its own register as the cluster update for every iteration, as
 *   soon as it has computed it, proposer or not (the forged update is the honest register).
 * - `proposal-silent`: never proposes (a proposer that stalls its cluster); the coordinator
 *   moves the role on after its patience (coordinator.ts, silent proposers).
 */
export const proposalAttackNames = [
  'proposal-scale',
  'proposal-flip',
  'proposal-race',
  'proposal-silent',
] as const;
export type ProposalAttackName = (typeof proposalAttackNames)[number];

export const PROPOSAL_FACTOR = { 'proposal-scale': 100, 'proposal-flip': -4 } as const;

export function isProposalAttackName(name: string): name is ProposalAttackName {
  return (proposalAttackNames as readonly string[]).includes(name);
}

/** The cluster update a `proposal-scale`/`proposal-flip` proposer sends (a new array). */
export function forgeProposal(name: ProposalAttackName, update: Float32Array): Float32Array {
  if (name === 'proposal-race' || name === 'proposal-silent') return Float32Array.from(update);
  const factor = PROPOSAL_FACTOR[name];
  return update.map((v) => factor * v);
}
