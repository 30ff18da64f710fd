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
  relayed: boolean;
}

export class LinkRelays {
  private readonly soloFailures: number;
  private readonly pairs = new Map<string, PairState>();
  /** Tab → peers it is relayed with. */
  private readonly byTab = new Map<string, Set<string>>();

  constructor(options: LinkRelayOptions = {}) {
    this.soloFailures = Math.max(1, options.soloFailures ?? 3);
  }

  /** `reporter` says its link to `peer` failed or connected. */
  report(reporter: string, peer: string, state: 'failed' | 'connected'): RelayChange {
    if (reporter === peer) return { relayed: false, changed: false };
    const key = pairKey(reporter, peer);
    let pair = this.pairs.get(key);
    if (state === 'connected') {
      if (!pair) return { relayed: false, changed: false };
      const was = pair.relayed;
      this.pairs.delete(key);
      if (was) this.unlink(reporter, peer);
      return { relayed: false, changed: was };
    }
    if (!pair) {
      pair = { failures: new Map(), relayed: false };
      this.pairs.set(key, pair);
    }
    pair.failures.set(reporter, (pair.failures.get(reporter) ?? 0) + 1);
    if (pair.relayed) return { relayed: true, changed: false };
    const mine = pair.failures.get(reporter)!;
    const theirs = pair.failures.get(peer) ?? 0;
    if ((mine > 0 && theirs > 0) || mine >= this.soloFailures) {
      pair.relayed = true;
      this.link(reporter, peer);
      return { relayed: true, changed: true };
    }
    return { relayed: false, changed: false };
  }

  isRelayed(a: string, b: string): boolean {
    return this.pairs.get(pairKey(a, b))?.relayed === true;
  }

  /** The peers `tab` exchanges frames with through the coordinator, sorted. */
  peersOf(tab: string): string[] {
    return [...(this.byTab.get(tab) ?? [])].sort();
  }

  /** Every tab in a pair with a report (failing or relayed). */
  tabs(): string[] {
    const tabs = new Set<string>();
    for (const key of this.pairs.keys()) for (const tab of splitKey(key)) tabs.add(tab);
    return [...tabs];
  }

  /** Relayed pairs now. */
  get relayedPairs(): number {
    let n = 0;
    for (const pair of this.pairs.values()) if (pair.relayed) n++;
    return n;
  }

  /** Drops the pair of `a` and `b`; whether it was relayed (their lists changed). */
  drop(a: string, b: string): boolean {
    const key = pairKey(a, b);
    const relayed = this.pairs.get(key)?.relayed === true;
    this.pairs.delete(key);
    if (relayed) this.unlink(a, b);
    return relayed;
  }

  /** Drops every pair of `tab`; returns the peers it was relayed with (their lists changed). */
  forget(tab: string): string[] {
    const peers = this.peersOf(tab);
    for (const key of [...this.pairs.keys()]) {
      const [a, b] = splitKey(key);
      if (a === tab || b === tab) this.pairs.delete(key);
    }
    for (const peer of peers) this.byTab.get(peer)?.delete(tab);
    this.byTab.delete(tab);
    return peers;
  }

  private link(a: string, b: string): void {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      let set = this.byTab.get(x);
      if (!set) this.byTab.set(x, (set = new Set()));
      set.add(y);
    }
  }

  private unlink(a: string, b: string): void {
    this.byTab.get(a)?.delete(b);
    this.byTab.get(b)?.delete(a);
    if (this.byTab.get(a)?.size === 0) this.byTab.delete(a);
    if (this.byTab.get(b)?.size === 0) this.byTab.delete(b);
  }
}

/** Tab ids never contain a newline (protocol: tab-xxxxxxxx). */
function pairKey(a: string, b: string): string {
  return a < b ? `${a}\n${b}` : `${b}\n${a}`;
}

function splitKey(key: string): [string, string] {
  const at = key.indexOf('\n');
  return [key.slice(0, at), key.slice(at + 1)];
}
