/**
 * PairMap against a plain model (a map keyed by the sorted pair): any sequence of sets,
 * deletes and tab drops leaves the same pairs, and every tab's partners are exactly the pairs it
 * is in.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PairMap } from '../src/pairs.ts';

const tabId = fc.constantFrom('tab-a', 'tab-b', 'tab-c', 'tab-d', 'tab-e');
const operation = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), a: tabId, b: tabId, value: fc.integer() }),
  fc.record({ kind: fc.constant('delete' as const), a: tabId, b: tabId }),
  fc.record({ kind: fc.constant('drop' as const), a: tabId }),
);

describe('PairMap', () => {
  it('agrees with a plain map of sorted pairs, partners included', () => {
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 60 }), (operations) => {
        const pairs = new PairMap<number>();
        const model = new Map<string, number>();
        const key = (a: string, b: string) => [a, b].sort().join(' ');
        for (const op of operations) {
          if (op.kind === 'set') {
            pairs.set(op.a, op.b, op.value);
            model.set(key(op.a, op.b), op.value);
          } else if (op.kind === 'delete') {
            expect(pairs.delete(op.a, op.b)).toBe(model.delete(key(op.a, op.b)));
          } else {
            const partners = pairs.deleteTab(op.a);
            const expected: string[] = [];
            for (const k of [...model.keys()]) {
              const [x, y] = k.split(' ') as [string, string];
              if (x !== op.a && y !== op.a) continue;
              expected.push(x === op.a ? y : x);
              model.delete(k);
            }
            expect(partners.sort()).toEqual(expected.sort());
          }
        }
        expect(pairs.size).toBe(model.size);
        for (const [k, value] of model) {
          const [x, y] = k.split(' ') as [string, string];
          expect(pairs.get(y, x)).toBe(value);
        }
        const tabs = new Set([...model.keys()].flatMap((k) => k.split(' ')));
        expect(pairs.tabs().sort()).toEqual([...tabs].sort());
        for (const tab of tabs) {
          const partners = [...model.keys()]
            .map((k) => k.split(' '))
            .filter((p) => p.includes(tab))
            .map(([x, y]) => (x === tab ? y : x));
          expect(pairs.partnersOf(tab).sort()).toEqual(partners.sort());
        }
      }),
      { numRuns: 300 },
    );
  });
});
