/**
 * Dissemination through the clusters (issue 17, item 2): who gets an iteration frame from the
 * coordinator, and who from its cluster's relay over the data channels.
 *
 * Guarantee. Every tab the coordinator can reach is covered exactly once by the plan: it is a
 * relay (sent the frame flagged FORWARD), or a direct recipient (sent the frame plain), or a
 * member whose cluster's relay forwards to it over a link that is not known to be broken.
 * A cluster's relay is its proposer when the coordinator reaches it (the proposer is the member
 * most likely to be live: it just proposed), else its lowest-slot reachable member. Members whose
 * link with the relay is not known to be up (not reported connected yet — a newcomer —, or
 * reported failed, or relayed through the coordinator) and tabs without a seat get the frame
 * directly. So the coordinator writes about one frame per cluster
 * instead of one per tab; what a relay withholds (it left, or lies by silence) a member gets by
 * asking (`iteration-request`) — the coordinator also resends to a departed relay's cluster.
 *
 * Several nodes: each plans the same relays (a relay may be a tab another node holds:
 * `reachableElsewhere`), and writes only to its own tabs — the relays it holds, and the tabs it
 * holds that no relay covers (covers are judged by the links this node's tabs reported). So each
 * cluster still gets one forwarded frame, whichever node holds its relay.
 *
 * Parameters: none (the cluster layout, who is reachable, which links are relayed).
 * Paper: none; a one-hop broadcast tree over the clusters the agreement already has (seed 000).
 */

/** A set of tab ids, or a map keyed by them (used as is: planned at every close). */
export interface TabIdSet {
  has(tabId: string): boolean;
  keys(): IterableIterator<string>;
}

export interface DisseminationInput {
  /** Every tab the coordinator holds a connection to (this node's sockets). */
  reachable: Iterable<string> | TabIdSet;
  /**
   * Several nodes: whether a tab is connected to another node of the swarm. It may relay (that
   * node writes to it) and be covered by a relay; it is never in `direct`.
   */
  reachableElsewhere?: (tabId: string) => boolean;
  /** The clusters: id and members (tab ids in slot order; undefined: a vacant seat). */
  clusters: Iterable<{ id: number; members: readonly (string | undefined)[] }>;
  /** The tab that proposes for a cluster, if any. */
  proposerOf: (clusterId: number) => string | undefined;
  /** Whether a tab may relay (e.g. not quarantined). */
  mayRelay: (tabId: string) => boolean;
  /** Whether the pair's WebRTC link is known to be up (an end reported it connected since). */
  linkUp: (a: string, b: string) => boolean;
}

export interface DisseminationPlan {
  /** Per cluster with a relay: the relay and the members it forwards to. */
  relays: { clusterId: number; relay: string; covers: string[] }[];
  /** Tabs the coordinator sends the frame to itself (not a relay). */
  direct: string[];
}

export function planDissemination(input: DisseminationInput): DisseminationPlan {
  const reachable: TabIdSet = 'has' in input.reachable ? input.reachable : new Set(input.reachable);
  const elsewhere = input.reachableElsewhere ?? (() => false);
  const anywhere = (id: string | undefined): id is string =>
    id !== undefined && (reachable.has(id) || elsewhere(id));
  const covered = new Set<string>();
  const relays: DisseminationPlan['relays'] = [];
  for (const cluster of input.clusters) {
    const proposer = input.proposerOf(cluster.id);
    // the proposer when it qualifies, else the lowest slot that does (the others are not asked:
    // this runs over every member of every cluster at each close)
    let relay =
      proposer !== undefined &&
      cluster.members.includes(proposer) &&
      anywhere(proposer) &&
      input.mayRelay(proposer)
        ? proposer
        : undefined;
    if (relay === undefined)
      for (const id of cluster.members) {
        if (anywhere(id) && input.mayRelay(id)) {
          relay = id;
          break;
        }
      }
    if (relay === undefined) continue;
    const covers: string[] = [];
    for (const id of cluster.members)
      if (id !== relay && anywhere(id) && input.linkUp(relay, id)) covers.push(id);
    covered.add(relay);
    for (const id of covers) covered.add(id);
    relays.push({ clusterId: cluster.id, relay, covers });
  }
  const direct: string[] = [];
  for (const id of reachable.keys()) if (!covered.has(id)) direct.push(id);
  return { relays, direct };
}
