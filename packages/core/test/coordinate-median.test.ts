import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { coordinateMedianInto } from '../src/aggregators/coordinate-median.ts';

/** The definition: sort each coordinate's values, average the two middle ones. */
function referenceMedian(vectors: Float32Array[]): Float32Array {
  const out = new Float32Array(vectors[0]!.length);
  for (let j = 0; j < out.length; j++) {
    const s = vectors.map((v) => v[j]!).sort((x, y) => x - y);
    out[j] = (s[(s.length - 1) >> 1]! + s[s.length >> 1]!) / 2;
  }
  return out;
}

describe('coordinateMedianInto', () => {
  it('gives the sorted definition for 1 to 7 inputs (the 2–4 fast paths included)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 20 }),
        fc.infiniteStream(fc.float({ noNaN: true, noDefaultInfinity: true, min: -1e6, max: 1e6 })),
        (n, d, values) => {
          const it = values[Symbol.iterator]();
          // +0 for −0: the fast paths may return a zero of the other sign, equal as a number
          const vectors = Array.from({ length: n }, () =>
            Float32Array.from({ length: d }, () => it.next().value! + 0),
          );
          const out = new Float32Array(d);
          coordinateMedianInto(vectors, out);
          expect(Array.from(out).map((x) => x + 0)).toEqual(
            Array.from(referenceMedian(vectors)).map((x) => x + 0),
          );
        },
      ),
    );
  });
});
