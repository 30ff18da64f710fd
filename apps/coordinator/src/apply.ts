/**
 * One command of the shared log applied to this node's replica: the same on every node, in the
 * same order (shared-state.ts). A command whose precondition no longer holds where it lands
 * changes nothing, on every node alike.
 */
import type { Command } from './shared-state.ts';
import type { CoordinatorContext } from './context.ts';
import { applyControl } from './control.ts';

/** Applies one command of the shared log: the same on every node, in the same order. */
export function applyCommand(ctx: CoordinatorContext, command: Command): void {
  const { registry, desk, proposals, membership } = ctx;
  switch (command.kind) {
    case 'join':
      membership.applyJoin(command);
      break;
    case 'leave': {
      const tab = registry.tabs.get(command.tabId);
      // a leave of a replaced connection (the tab resumed meanwhile) changes nothing
      if (tab && tab.connected && tab.socketId === command.socketId)
        membership.applyLeave(tab, command.at);
      break;
    }
    case 'rtt': {
      const tab = registry.tabs.get(command.tabId);
      if (tab) tab.rttMs = command.rttMs;
      break;
    }
    case 'proposal': {
      const aggregator = proposals.ruleFor(command.baseIteration);
      const { outcome, effects } = desk.propose({ ...command, aggregator });
      proposals.run(effects);
      // waiting for confirmations: the ack goes out with the verdict (a later settle effect)
      if ('pending' in outcome) return;
      ctx.settle(command.id, outcome);
      // any node may close: the one that received the proposal, or another (grace timers)
      if (command.node !== ctx.nodeId) ctx.iterations.maybeClose();
      break;
    }
    case 'confirmation':
      proposals.run(desk.confirm(command));
      break;
    case 'proposer-silent':
      proposals.run(desk.proposerSilent(command));
      break;
    case 'confirm-timeout':
      proposals.run(desk.timeout(command.clusterId, command.proposalId));
      break;
    case 'closed':
      ctx.iterations.applyClose(command);
      break;
    case 'control':
      applyControl(ctx, command.command, command.at);
      break;
    case 'evaluated':
      ctx.records.record(command.point, command.point.at);
      break;
    case 'node-down':
      membership.applyNodeDown(command.down, command.at);
      break;
    case 'apart':
      registry.setApart(command.a, command.b, command.apart);
      break;
    case 'suspects': {
      const tab = registry.tabs.get(command.tabId);
      if (!tab) break;
      tab.suspects = command.peers;
      for (const suspect of command.peers) membership.reviewQuarantine(suspect);
      break;
    }
  }
  ctx.settle(command.id, true);
}
