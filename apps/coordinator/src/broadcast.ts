/**
 * The closed iteration to the tabs: one signed buffer, written as one WebSocket message per
 * recipient (socket-parser.ts). `cluster` dissemination writes a FORWARD-flagged copy to one
 * relay per cluster and the plain frame only to the tabs no relay covers (core
 * planDissemination); `direct` writes the plain frame to all. With several nodes every node
 * plans the same relays and writes to the tabs it holds; a relay another node holds that a member
 * here had to ask past is passed over by writing this node's members of that cluster directly
 * (the other nodes learn it from their own members). The last frames are kept for tabs that ask
 * (`iteration-request`): a member whose relay never forwarded, or a tab back from a short
 * absence.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { planDissemination, type ClosedIteration } from '@swarmgrad/core';
import {
  encodeIterationFrame,
  KEPT_ITERATION_FRAMES,
  MAX_STATED_STALENESS,
  setIterationSignature,
  signedBytes,
} from '@swarmgrad/protocol';
import type { Broadcast, CoordinatorContext } from './context.ts';
import { RELAY_PASSED_OVER_ITERATIONS, type Dissemination, type WorkerSocket } from './options.ts';
import { newSigningKey, publicKeyOf } from './signing-key.ts';

export class IterationBroadcast implements Broadcast {
  /**
   * Signs iteration frames; its public key goes to every tab in the welcome. Nodes of one swarm
   * share the first node's through the replica: a relay forwards a frame another node signed.
   */
  private signingKey: KeyObject = newSigningKey();
  /** The public key, raw, base64url (the welcome's `iterationKey`). */
  iterationKey = publicKeyOf(this.signingKey);
  /** The last iteration frames (plain, signed), oldest first, for `iteration-request`. */
  private readonly recentFrames: { iteration: number; frame: Buffer }[] = [];
  /** Relay tab → the iteration until which it is passed over (RELAY_PASSED_OVER_ITERATIONS). */
  private readonly relaysPassedOver = new Map<string, number>();
  /** Relay tab → its cluster, for the last iteration frame sent. */
  private lastRelays = new Map<string, number>();

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly dissemination: Dissemination,
  ) {}

  /** The signing key, PKCS #8 DER in base64 (the replica's). */
  exportSigningKey(): string {
    return this.signingKey.export({ format: 'der', type: 'pkcs8' }).toString('base64');
  }

  importSigningKey(pkcs8Base64: string): void {
    const key = createPrivateKey({
      key: Buffer.from(pkcs8Base64, 'base64'),
      format: 'der',
      type: 'pkcs8',
    });
    if (key.asymmetricKeyType !== 'ed25519')
      throw new Error('the iteration signing key is not Ed25519');
    this.signingKey = key;
    this.iterationKey = publicKeyOf(key);
  }

  send(closed: ClosedIteration): void {
    const { registry, tabs, wire } = this.ctx;
    const header = {
      iteration: closed.iteration,
      learningRate: this.ctx.flags.learningRate,
      phase: this.ctx.flags.phase,
      // a pipelined tab drops a register staler than this before sending it (the proposal
      // desk refuses inputs older than S, and with staleness "auto" S moves at run time)
      staleness: Math.min(MAX_STATED_STALENESS, this.ctx.engine.staleness),
    };
    const plain = this.signed(encodeIterationFrame(header, closed.frame));
    for (const [tabId, until] of this.relaysPassedOver)
      if (until < closed.iteration || !registry.tabs.has(tabId))
        this.relaysPassedOver.delete(tabId);
    this.recentFrames.push({ iteration: closed.iteration, frame: plain });
    if (this.recentFrames.length > KEPT_ITERATION_FRAMES) this.recentFrames.shift();
    if (this.dissemination === 'direct') {
      // every node tells its own tabs — those it welcomed, not a socket still saying hello
      tabs.toWelcomed('iteration', plain);
      this.lastRelays = new Map();
      wire.countIterationFrames('direct', plain.byteLength, tabs.size);
      return;
    }
    const { relays, linksUp } = this.ctx;
    const passedOver = (tabId: string): boolean =>
      (this.relaysPassedOver.get(tabId) ?? -1) >= closed.iteration;
    const plan = planDissemination({
      reachable: tabs.held(),
      reachableElsewhere: (tabId) => {
        const tab = registry.tabs.get(tabId);
        return tab?.connected === true && tab.node !== this.ctx.nodeId;
      },
      clusters: registry.clusters.map((c) => ({ id: c.id, members: c.seats })),
      proposerOf: (clusterId) => registry.proposerOf(clusterId),
      // a relay this node holds and passed over is replaced; one another node holds is chosen by
      // every node alike, and passed over below for this node's members only
      mayRelay: (tabId) =>
        registry.tabs.get(tabId)?.quarantined !== true && !(passedOver(tabId) && tabs.holds(tabId)),
      linkUp: (a, b) => linksUp.has(a, b) && !relays.isRelayed(a, b),
    });
    const forward = this.signed(encodeIterationFrame(header, closed.frame, { forward: true }));
    const relaying: string[] = [];
    const plainTo = plan.direct;
    this.lastRelays = new Map();
    for (const { relay, clusterId, covers } of plan.relays) {
      if (passedOver(relay)) {
        plainTo.push(...covers);
        continue;
      }
      this.lastRelays.set(relay, clusterId);
      relaying.push(relay);
    }
    // one emit per frame kind: socket.io encodes the packet once for all its sockets
    const forwarded = tabs.sendMany(relaying, 'iteration', forward);
    const direct = tabs.sendMany(plainTo, 'iteration', plain);
    wire.countIterationFrames('relay', forward.byteLength, forwarded);
    wire.countIterationFrames('direct', plain.byteLength, direct);
  }

  private signed(frame: Uint8Array): Buffer {
    setIterationSignature(frame, sign(null, signedBytes(frame), this.signingKey));
    return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  /** The last iteration frame to every member of a cluster this node holds (they drop repeats). */
  resendToCluster(clusterId: number): void {
    const last = this.recentFrames.at(-1);
    if (last === undefined) return;
    let sent = 0;
    for (const { tabId } of this.ctx.registry.members(clusterId))
      if (this.ctx.tabs.send(tabId, 'iteration', last.frame)) sent++;
    this.ctx.wire.countIterationFrames('direct', last.frame.byteLength, sent);
  }

  relayedLastTo(tabId: string, clusterId: number): boolean {
    return this.lastRelays.get(tabId) === clusterId;
  }

  /** The frames after `after` that are kept, in order; an older gap the tab fills by a resync. */
  answerRequest(tabId: string, socket: WorkerSocket, after: number): void {
    // the member's relay had the newest frame to forward and it did not arrive
    const seat = this.ctx.registry.seatOf(tabId);
    const newest = this.recentFrames.at(-1);
    if (seat !== undefined && newest !== undefined && after < newest.iteration) {
      for (const [relay, clusterId] of this.lastRelays) {
        if (clusterId !== seat.clusterId || relay === tabId) continue;
        this.relaysPassedOver.set(relay, newest.iteration + RELAY_PASSED_OVER_ITERATIONS);
      }
    }
    for (const { iteration, frame } of this.recentFrames) {
      if (iteration <= after) continue;
      socket.emit('iteration', frame);
      this.ctx.wire.countIterationFrames('request', frame.byteLength, 1);
    }
  }
}
