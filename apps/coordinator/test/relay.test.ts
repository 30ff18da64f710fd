/** The relay decision (relay.ts): which pairs of tabs exchange frames through the coordinator. */
import { describe, expect, it } from 'vitest';
import { LinkRelays } from '../src/relay.ts';

describe('LinkRelays', () => {
  it('relays a pair once both ends reported a failure, and tells both ends', () => {
    const relays = new LinkRelays();
    expect(relays.report('a', 'b', 'failed')).toEqual({ relayed: false, changed: false });
    expect(relays.isRelayed('a', 'b')).toBe(false);
    expect(relays.peersOf('a')).toEqual([]);
    expect(relays.report('b', 'a', 'failed')).toEqual({ relayed: true, changed: true });
    expect(relays.isRelayed('a', 'b')).toBe(true);
    expect(relays.isRelayed('b', 'a')).toBe(true);
    expect(relays.peersOf('a')).toEqual(['b']);
    expect(relays.peersOf('b')).toEqual(['a']);
    expect(relays.relayedPairs).toBe(1);
    // further failures change nothing
    expect(relays.report('a', 'b', 'failed')).toEqual({ relayed: true, changed: false });
  });

  it('relays on one end alone only after soloFailures failures in a row', () => {
    const relays = new LinkRelays({ soloFailures: 3 });
    expect(relays.report('a', 'b', 'failed').relayed).toBe(false);
    expect(relays.report('a', 'b', 'failed').relayed).toBe(false);
    expect(relays.report('a', 'b', 'failed')).toEqual({ relayed: true, changed: true });
    expect(relays.peersOf('b')).toEqual(['a']);
  });

  it('a connected report clears the failures and ends the relay', () => {
    const relays = new LinkRelays({ soloFailures: 2 });
    relays.report('a', 'b', 'failed');
    // the link came up before the other end said anything: the count starts over
    expect(relays.report('b', 'a', 'connected')).toEqual({ relayed: false, changed: false });
    expect(relays.report('a', 'b', 'failed').relayed).toBe(false);
    expect(relays.report('a', 'b', 'failed')).toEqual({ relayed: true, changed: true });
    expect(relays.report('b', 'a', 'connected')).toEqual({ relayed: false, changed: true });
    expect(relays.isRelayed('a', 'b')).toBe(false);
    expect(relays.peersOf('a')).toEqual([]);
    expect(relays.peersOf('b')).toEqual([]);
    expect(relays.relayedPairs).toBe(0);
    // connected about a pair never reported is nothing
    expect(relays.report('c', 'd', 'connected')).toEqual({ relayed: false, changed: false });
  });

  it('keeps pairs apart: a tab relayed with one peer is not relayed with another', () => {
    const relays = new LinkRelays();
    relays.report('x', 'a', 'failed');
    relays.report('a', 'x', 'failed');
    relays.report('x', 'b', 'failed');
    expect(relays.peersOf('x')).toEqual(['a']);
    relays.report('b', 'x', 'failed');
    expect(relays.peersOf('x')).toEqual(['a', 'b']);
    expect(relays.isRelayed('a', 'b')).toBe(false);
    // a tab's report about itself is ignored
    expect(relays.report('a', 'a', 'failed')).toEqual({ relayed: false, changed: false });
    expect(relays.relayedPairs).toBe(2);
  });

  it('forget drops every pair of a tab and returns the peers whose lists changed', () => {
    const relays = new LinkRelays({ soloFailures: 1 });
    relays.report('x', 'a', 'failed');
    relays.report('x', 'b', 'failed');
    relays.report('a', 'b', 'failed');
    expect(relays.forget('x')).toEqual(['a', 'b']);
    expect(relays.peersOf('x')).toEqual([]);
    expect(relays.peersOf('a')).toEqual(['b']);
    expect(relays.peersOf('b')).toEqual(['a']);
    expect(relays.isRelayed('x', 'a')).toBe(false);
    expect(relays.relayedPairs).toBe(1);
    // a pair that was only failing (not relayed) is forgotten too: its count starts over
    const fresh = new LinkRelays({ soloFailures: 2 });
    fresh.report('y', 'c', 'failed');
    expect(fresh.forget('y')).toEqual([]);
    expect(fresh.report('y', 'c', 'failed').relayed).toBe(false);
  });

  it('on random report sequences, relayed pairs and peer lists always agree', () => {
    let seed = 7;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const tabs = ['a', 'b', 'c', 'd', 'e'];
    const relays = new LinkRelays({ soloFailures: 3 });
    for (let step = 0; step < 2000; step++) {
      const r = tabs[Math.floor(next() * tabs.length)]!;
      const p = tabs[Math.floor(next() * tabs.length)]!;
      const roll = next();
      if (roll < 0.05) relays.forget(r);
      else relays.report(r, p, roll < 0.8 ? 'failed' : 'connected');
      let pairs = 0;
      for (const a of tabs) {
        for (const b of tabs) {
          if (a >= b) continue;
          const relayed = relays.isRelayed(a, b);
          if (relayed) pairs++;
          expect(relays.peersOf(a).includes(b)).toBe(relayed);
          expect(relays.peersOf(b).includes(a)).toBe(relayed);
        }
      }
      expect(relays.relayedPairs).toBe(pairs);
    }
  });
});
