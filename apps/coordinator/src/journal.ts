/**
 * Write-ahead journal of the agreed base's deltas, so a coordinator killed at any moment
 * (SIGKILL included) restarts at the last closed iteration, not at the last checkpoint.
 *
 * One file per checkpoint: `journal-<checkpointIteration>.bin`, a sequence of records
 * [u32 byteLength][u32 iteration][delta frame bytes], iterations consecutive from the
 * checkpoint's + 1. Each record is appended synchronously before the iteration is announced
 * to any tab (the page cache survives SIGKILL). Reading stops at a torn or out-of-sequence
 * tail (a crash during an append) and returns the records before it; frames carry their own
 * checksum, checked again when replayed.
 */
import { appendFileSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface JournalRecord {
  iteration: number;
  frame: Uint8Array;
}

const RECORD_HEADER = 8;

/** Where closed iterations are made durable between two checkpoints. */
export interface Journal {
  append(record: JournalRecord): void;
  rotate(iteration: number): void;
}

/**
 * Several nodes: the command log in Redis is the journal (redis-state.ts), and the snapshot
 * taken with each checkpoint its start; nothing more is written here.
 */
export class SharedLogJournal implements Journal {
  append(): void {}
  rotate(): void {}
}

export class DeltaJournal implements Journal {
  private checkpointIteration: number;

  constructor(
    private readonly dir: string,
    checkpointIteration: number,
  ) {
    this.checkpointIteration = checkpointIteration;
  }

  private fileFor(checkpointIteration: number): string {
    return join(this.dir, `journal-${String(checkpointIteration).padStart(9, '0')}.bin`);
  }

  append(record: JournalRecord): void {
    appendFileSync(this.fileFor(this.checkpointIteration), encodeRecord(record));
  }

  /**
   * A checkpoint at `iteration` is durable: later records move to a new file (records already
   * appended past that iteration, while the checkpoint was written, are carried over) and
   * older journals are removed. Synchronous, so no append can interleave.
   */
  rotate(iteration: number): void {
    if (iteration === this.checkpointIteration) return;
    const carried = this.read(iteration);
    const next = this.fileFor(iteration);
    writeFileSync(next, Buffer.concat(carried.map(encodeRecord)));
    this.checkpointIteration = iteration;
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (/^journal-\d+\.bin$/.test(name) && path !== next) rmSync(path, { force: true });
    }
  }

  /**
   * Records written after the checkpoint at `checkpointIteration`, consecutive and in order.
   * Every journal file present is read, not only the checkpoint's own: a crash between a
   * checkpoint becoming LATEST and the journal's rotation leaves the records in the file of
   * the previous checkpoint.
   */
  read(checkpointIteration: number): JournalRecord[] {
    const byIteration = new Map<number, Uint8Array>();
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    for (const name of names) {
      const match = /^journal-(\d+)\.bin$/.exec(name);
      if (!match) continue;
      for (const record of readFile(join(this.dir, name), Number(match[1]))) {
        byIteration.set(record.iteration, record.frame);
      }
    }
    const records: JournalRecord[] = [];
    for (let t = checkpointIteration + 1; byIteration.has(t); t++) {
      records.push({ iteration: t, frame: byIteration.get(t)! });
    }
    return records;
  }
}

/** The records of one journal file, stopping at a torn or out-of-sequence tail. */
function readFile(path: string, base: number): JournalRecord[] {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch {
    return [];
  }
  const records: JournalRecord[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  let expected: number | undefined;
  while (offset + RECORD_HEADER <= bytes.byteLength) {
    const length = view.getUint32(offset, true);
    const iteration = view.getUint32(offset + 4, true);
    const end = offset + RECORD_HEADER + length;
    if (
      end > bytes.byteLength ||
      iteration <= base ||
      (expected !== undefined && iteration !== expected)
    )
      break;
    records.push({ iteration, frame: bytes.slice(offset + RECORD_HEADER, end) });
    offset = end;
    expected = iteration + 1;
  }
  return records;
}

function encodeRecord(record: JournalRecord): Uint8Array {
  const bytes = new Uint8Array(RECORD_HEADER + record.frame.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, record.frame.byteLength, true);
  view.setUint32(4, record.iteration, true);
  bytes.set(record.frame, RECORD_HEADER);
  return bytes;
}
