import { describe, expect, it } from 'vitest';
import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DeltaJournal } from '../src/journal.ts';
import { tempDir } from '@swarmgrad/test-support/harness';

const frame = (n: number) => Uint8Array.from({ length: 16 + n }, (_, i) => (i * n) & 0xff);

describe('delta journal (real files)', () => {
  it('returns consecutive records after a checkpoint and ignores a torn tail', async () => {
    const dir = await tempDir();
    const journal = new DeltaJournal(dir, 0);
    for (let t = 1; t <= 5; t++) journal.append({ iteration: t, frame: frame(t) });
    // a crash mid-append: half a record at the end
    appendFileSync(join(dir, 'journal-000000000.bin'), Uint8Array.from([40, 0, 0, 0, 6, 0]));
    const records = journal.read(0);
    expect(records.map((r) => r.iteration)).toEqual([1, 2, 3, 4, 5]);
    expect(records[2]!.frame).toEqual(frame(3));
    expect(journal.read(3).map((r) => r.iteration)).toEqual([4, 5]);
  });

  it('rotation carries records closed while the checkpoint was written, and drops old files', async () => {
    const dir = await tempDir();
    const journal = new DeltaJournal(dir, 0);
    for (let t = 1; t <= 7; t++) journal.append({ iteration: t, frame: frame(t) });
    journal.rotate(4); // the checkpoint at 4 became durable while 5..7 closed
    expect(readdirSync(dir).filter((n) => n.startsWith('journal-'))).toEqual([
      'journal-000000004.bin',
    ]);
    journal.append({ iteration: 8, frame: frame(8) });
    expect(journal.read(4).map((r) => r.iteration)).toEqual([5, 6, 7, 8]);
  });

  it('finds the records when the process died between a checkpoint and the rotation', async () => {
    const dir = await tempDir();
    const journal = new DeltaJournal(dir, 0);
    for (let t = 1; t <= 9; t++) journal.append({ iteration: t, frame: frame(t) });
    // restart: LATEST says 8, but journal-8 was never created
    const restarted = new DeltaJournal(dir, 8);
    expect(restarted.read(8).map((r) => r.iteration)).toEqual([9]);
  });
});
