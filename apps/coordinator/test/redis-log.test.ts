import { describe, expect, it } from 'vitest';
import { decodeCommands, encodeCommands } from '../src/redis-state.ts';
import type { Command } from '../src/shared-state.ts';

describe('the shared log entry format', () => {
  it('carries a batch of commands in order, frames byte for byte at offset 0 of their own buffer', () => {
    const pool = new Uint8Array(64).map((_, i) => i);
    // a frame that is a view into a larger buffer at an odd offset (as socket.io hands them)
    const frame = pool.subarray(3, 3 + 21);
    const header = { node: 'node-a', at: 1_700_000_000_000 };
    const commands: Command[] = [
      { ...header, id: 'node-a:1', kind: 'rtt', tabId: 't1', rttMs: 12 },
      {
        ...header,
        id: 'node-a:2',
        kind: 'proposal',
        tabId: 't1',
        clusterId: 4,
        baseIteration: 9,
        frame,
        staleness: 1,
        digest: 'abc',
        inputs: [{ slot: 0, digest: 'in' }],
        rejected: [],
      },
      {
        ...header,
        id: 'node-a:3',
        kind: 'closed',
        iteration: 10,
        frame: new Uint8Array([9, 8, 7]),
        contributors: [4],
        staleAccepted: 0,
        rounds: 3,
        spread: 0.5,
      },
    ];
    const entry = encodeCommands(commands);
    // the frames travel as bytes, not inside the JSON
    expect(entry.frames.byteLength).toBe(frame.byteLength + 3);
    expect(entry.json).not.toContain('frame64');
    const decoded = decodeCommands(entry.json, entry.frames);
    expect(decoded.map((c) => c.id)).toEqual(['node-a:1', 'node-a:2', 'node-a:3']);
    const proposal = decoded[1] as Extract<Command, { kind: 'proposal' }>;
    expect(proposal.frame).toBeInstanceOf(Uint8Array);
    expect([...proposal.frame]).toEqual([...frame]);
    expect(proposal.frame.byteOffset).toBe(0);
    expect(proposal.frame.buffer.byteLength).toBe(frame.byteLength);
    expect({ ...proposal, frame: undefined }).toEqual({ ...commands[1], frame: undefined });
    expect(decoded[2]).toEqual(commands[2]);
    expect(decoded[0]).toEqual(commands[0]);
  });

  it('reads entries written with base64 frames (before the binary field)', () => {
    const header = { node: 'node-a', at: 1 };
    const json = JSON.stringify([
      {
        ...header,
        id: 'node-a:1',
        kind: 'closed',
        iteration: 2,
        frame64: 'CQgH',
        contributors: [],
      },
    ]);
    const [closed] = decodeCommands(json) as Extract<Command, { kind: 'closed' }>[];
    expect([...closed!.frame]).toEqual([9, 8, 7]);
  });

  it('refuses an entry that is not a batch, or whose frames lie outside its binary field', () => {
    expect(() => decodeCommands('{"kind":"rtt"}')).toThrow(/not an array/);
    expect(() => decodeCommands('not json')).toThrow();
    const at = (frameAt: unknown) => JSON.stringify([{ id: 'a:1', kind: 'closed', frameAt }]);
    const frames = new Uint8Array(4);
    expect(() => decodeCommands(at([0, 4]), frames)).not.toThrow();
    for (const bad of [[2, 3], [-1, 1], [0, 1.5], 'x', [0]])
      expect(() => decodeCommands(at(bad), frames)).toThrow(/outside the entry's frames/);
    expect(() => decodeCommands(at([0, 1]))).toThrow(/outside the entry's frames/);
  });
});
