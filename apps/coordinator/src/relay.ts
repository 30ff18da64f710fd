/**
 * Which pairs of tabs exchange their frames through the coordinator because their WebRTC link
 * does not connect (issue 14, item 3). Pure: tab ids and reports in, decisions out; the
 * coordinator validates the reports (schema, same cluster, rate) before they reach this.
 *
 * Rule
 * - Each end of a link reports `failed` when a connection attempt to the other end failed or
 *   did not connect in time (the mesh's connect timeout), and `connected` when the link came up.
 * - A pair is relayed once both ends reported a failure since the link was last connected, or
 *   one end reported `soloFailures` (default 3) failures in a row: an end that cannot report
 *   (its coordinator connection is elsewhere, or it lies by silence) does not keep its peer cut
 *   off, and one report alone (a slow first attempt) does not start a relay.
 * - A `connected` report from either end clears the pair's failures and ends its relay: a
 *   direct link is cheaper for everyone. A report is only ever about the reporter's own links,
 *   so a lying tab can relay or un-relay only the links it is an end of.
 * - `forget(tab)` (the tab left for good) drops its pairs; `drop(a, b)` one pair (its tabs no
 *   longer share a cluster, e.g. placement parted them).
 */
import { PairMap } from './pairs.ts';

export interface LinkRelayOptions {
  /** Failures in a row from one end that relay the pair without the other end's word. */
  soloFailures?: number;
}

/** What a report changed: the tabs whose list of relayed peers is different now. */
export interface RelayChange {
  /** The pair is relayed after the report. */
  relayed: boolean;
  /** The pair's relay started or ended with this report. */
  changed: boolean;
}

interface PairState {
  /** Failures reported by each end (keyed by the reporter) since the last connection. */
  failures: Map<string, number>;
}

export class LinkRelays {
  private readonly soloFailures: number;
  /** Pairs with a failure reported since they last connected. */
  private readonly pairs = new PairMap<PairState>();
  /** Pairs whose frames go through the coordinator (each also in `pairs`). */
  private readonly relayed = new PairMap<true>();

  constructor(options: LinkRelayOptions = {}) {
    this.soloFailures = Math.max(1, options.soloFailures ?? 3);
  }

  /** `reporter` says its link to `peer` failed or connected. */
  report(reporter: string, peer: string, state: 'failed' | 'connected'): RelayChange {
    if (reporter === peer) return { relayed: false, changed: false };
    let pair = this.pairs.get(reporter, peer);
    if (state === 'connected') {
      if (!pair) return { relayed: false, changed: false };
      this.pairs.delete(reporter, peer);
      const was = this.relayed.delete(reporter, peer);
      return { relayed: false, changed: was };
    }
    if (!pair) {
      pair = { failures: new Map() };
      this.pairs.set(reporter, peer, pair);
    }
    pair.failures.set(reporter, (pair.failures.get(reporter) ?? 0) + 1);
    if (this.relayed.has(reporter, peer)) return { relayed: true, changed: false };
    const mine = pair.failures.get(reporter)!;
    const theirs = pair.failures.get(peer) ?? 0;
    if ((mine > 0 && theirs > 0) || mine >= this.soloFailures) {
      this.relayed.set(reporter, peer, true);
      return { relayed: true, changed: true };
    }
    return { relayed: false, changed: false };
  }

  isRelayed(a: string, b: string): boolean {
    return this.relayed.has(a, b);
  }

  /** The peers `tab` exchanges frames with through the coordinator, sorted. */
  peersOf(tab: string): string[] {
    return this.relayed.partnersOf(tab).sort();
  }

  /** Every tab in a pair with a report (failing or relayed). */
  tabs(): string[] {
    return this.pairs.tabs();
  }

  /** Relayed pairs now. */
  get relayedPairs(): number {
    return this.relayed.size;
  }

  /** Drops the pair of `a` and `b`; whether it was relayed (their lists changed). */
  drop(a: string, b: string): boolean {
    this.pairs.delete(a, b);
    return this.relayed.delete(a, b);
  }

  /** Drops every pair of `tab`; returns the peers it was relayed with (their lists changed). */
  forget(tab: string): string[] {
    const peers = this.peersOf(tab);
    this.pairs.deleteTab(tab);
    this.relayed.deleteTab(tab);
    return peers;
  }
}
