/**
 * parseMetricsCsv reads the coordinator's `/api/metrics.csv` (apps/coordinator dashboard.ts
 * metricsCsv) as the benches and specs use it: by column name, an empty evaluation as null.
 */
import { describe, expect, it } from 'vitest';
import { parseMetricsCsv } from '../src/coordinator.ts';

const HEADER =
  'iteration,time,heldout_loss,heldout_accuracy,training_loss,bytes_sent,fp32_equivalent_bytes';

describe('parseMetricsCsv', () => {
  it('reads each closed iteration, with its evaluation where there is one', () => {
    const csv = [
      HEADER,
      '1,2026-12-07T14:00:01.250Z,,,2.1,100,3200',
      '2,2026-12-07T14:00:02.500Z,0.45,0.9025,1.9,200,6400',
    ].join('\n');
    expect(parseMetricsCsv(`${csv}\n`)).toEqual([
      {
        iteration: 1,
        at: Date.parse('2026-12-07T14:00:01.250Z'),
        heldOutLoss: null,
        heldOutAccuracy: null,
      },
      {
        iteration: 2,
        at: Date.parse('2026-12-07T14:00:02.500Z'),
        heldOutLoss: 0.45,
        heldOutAccuracy: 0.9025,
      },
    ]);
  });

  it('finds the columns by name, and refuses a file without them or a row without a time', () => {
    const reordered =
      'time,heldout_accuracy,iteration,heldout_loss\n2026-12-07T14:00:00.000Z,0.5,7,1.2';
    expect(parseMetricsCsv(reordered)[0]).toMatchObject({
      iteration: 7,
      heldOutAccuracy: 0.5,
      heldOutLoss: 1.2,
    });
    expect(() => parseMetricsCsv('iteration,time\n1,2026-12-07T14:00:00Z')).toThrow(/heldout_loss/);
    expect(() => parseMetricsCsv(`${HEADER}\n3,not a time,,,,,`)).toThrow(/bad time/);
  });
});
