import { joinOrderPlacement } from './join-order.ts';
import { rttPlacement } from './rtt.ts';
import type { PlacementName, PlacementStrategy } from './placement.ts';

export * from './placement.ts';
export { joinOrderPlacement, rttPlacement };

export const placementStrategies: readonly PlacementStrategy[] = [joinOrderPlacement, rttPlacement];

export function getPlacement(name: PlacementName): PlacementStrategy {
  const found = placementStrategies.find((p) => p.name === name);
  if (found === undefined) throw new RangeError(`unknown placement ${name}`);
  return found;
}
