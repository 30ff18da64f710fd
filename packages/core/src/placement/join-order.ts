/**
 * Join-order placement: newcomers are seated in the order they joined, filling the
 * lowest-numbered cluster with a vacancy first. Predictable; the default.
 */
import { placeWith, type PlacementStrategy } from './placement.ts';

export const joinOrderPlacement: PlacementStrategy = {
  name: 'join-order',
  place: (input) =>
    placeWith(
      input,
      (tabs) => [...tabs].sort((a, b) => a.joinSeq - b.joinSeq),
      (_tab, candidates) => candidates[0]!,
    ),
};
