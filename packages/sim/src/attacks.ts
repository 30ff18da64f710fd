/**
 * Byzantine workers in the simulator: a thin shell over core's attack library
 * (packages/core/src/attacks, one file per attack, the same code a browser tab runs with
 * `?fault=`). The scenario's `byzantine.magnitude` is the attack's `strength` (undefined = the
 * attack's default), `byzantine.lag` the stale attack's lag.
 *
 * What an attacker sees: the simulator hands every attacker the honest members' messages of its
 * cluster round, computed on the same base, besides its own honest one — omniscient collusion,
 * the setting of the ALIE, IPM and min-max papers and an upper bound on what a tab sees (its
 * peers' registers of the current or previous iteration).
 */
import {
  attackNames as registerAttackNames,
  createAttack,
  isAttackName as isRegisterAttackName,
  isProposalAttackName,
  proposalAttackNames,
  type Attack,
  type AttackName as RegisterAttackName,
  type ProposalAttackName,
} from '@swarmgrad/core';

/**
 * A scenario's attack: one of the register attacks, or one on the cluster's proposal — but not
 * `proposal-silent`, whose cost is the coordinator's patience in wall time (coordinator.ts),
 * which the simulator's rounds do not model: the chaos suite measures it with real tabs.
 */
export type AttackName = RegisterAttackName | Exclude<ProposalAttackName, 'proposal-silent'>;

export const attackNames: readonly AttackName[] = [
  ...registerAttackNames,
  ...proposalAttackNames.filter((name) => name !== 'proposal-silent'),
] as AttackName[];

export function isAttackName(name: string): name is AttackName {
  return isRegisterAttackName(name) || (isProposalAttackName(name) && name !== 'proposal-silent');
}

/**
 * A new attacker of the register attacks for a scenario's byzantine settings (the proposal
 * attacks act in content.ts `propose`, on the cluster's proposal).
 */
export function attackerFor(spec: {
  attack: RegisterAttackName;
  magnitude: number | undefined;
  lag: number;
}): Attack {
  return createAttack(spec.attack, {
    lag: spec.lag,
    ...(spec.magnitude === undefined ? {} : { strength: spec.magnitude }),
  });
}
