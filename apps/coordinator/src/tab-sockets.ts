/**
 * The connections of the tabs this node welcomed, and delivery to any tab of the swarm: a tab
 * this node holds gets the event on its socket; one another node holds (several nodes) through
 * its socket.io room, which the Redis adapter carries to that node. With one process every
 * connected tab is held here, so the room path is never taken.
 */
import type { Namespace } from 'socket.io';
import type { TabRegistry } from '@swarmgrad/core';
import type { WorkerClientToServer, WorkerServerToClient } from '@swarmgrad/protocol';
import type { WorkerSocket } from './options.ts';

type ServerEvent = keyof WorkerServerToClient;
type EventArgs<E extends ServerEvent> = Parameters<WorkerServerToClient[E]>;
type Emit = (event: string, ...args: unknown[]) => boolean;

/** socket.io room of the sockets this node welcomed as tabs (the iteration broadcast's). */
const WELCOMED_ROOM = 'welcomed';

/** socket.io room of one tab, so a node can reach a tab another node holds. */
function tabRoom(tabId: string): string {
  return `tab:${tabId}`;
}

export class TabSockets {
  private readonly sockets = new Map<string, WorkerSocket>();
  namespace: Namespace<WorkerClientToServer, WorkerServerToClient> | undefined;

  constructor(private readonly registry: TabRegistry) {}

  get size(): number {
    return this.sockets.size;
  }

  get(tabId: string): WorkerSocket | undefined {
    return this.sockets.get(tabId);
  }

  /** Whether this node holds the tab's connection. */
  holds(tabId: string): boolean {
    return this.sockets.has(tabId);
  }

  ids(): IterableIterator<string> {
    return this.sockets.keys();
  }

  /** The connections held, by tab (read-only: a set of tab ids to plan with). */
  held(): ReadonlyMap<string, WorkerSocket> {
    return this.sockets;
  }

  all(): WorkerSocket[] {
    return [...this.sockets.values()];
  }

  /** The tab was welcomed on this socket: it gets iteration broadcasts and its own room. */
  welcome(tabId: string, socket: WorkerSocket): void {
    this.sockets.set(tabId, socket);
    void socket.join(WELCOMED_ROOM);
    void socket.join(tabRoom(tabId));
  }

  /** Forgets the tab's connection, if `socketId` is still the one held. */
  release(tabId: string, socketId: string | undefined): void {
    if (this.sockets.get(tabId)?.id === socketId) this.sockets.delete(tabId);
  }

  /** To a tab this node holds; false when it holds no connection of that tab. */
  send<E extends ServerEvent>(tabId: string, event: E, ...args: EventArgs<E>): boolean {
    const socket = this.sockets.get(tabId);
    if (socket === undefined) return false;
    (socket.emit as unknown as Emit)(event, ...args);
    return true;
  }

  /** To a connected tab wherever it is held; false when it is not connected anywhere. */
  deliver<E extends ServerEvent>(tabId: string, event: E, ...args: EventArgs<E>): boolean {
    if (this.send(tabId, event, ...args)) return true;
    if (this.registry.tabs.get(tabId)?.connected !== true || this.namespace === undefined)
      return false;
    (this.namespace.to(tabRoom(tabId)).emit as unknown as Emit)(event, ...args);
    return true;
  }

  /**
   * To the tabs among `tabIds` this node holds: one encoding, written to each socket (as
   * toWelcomed), instead of one emit per tab. Returns how many it was written to.
   */
  sendMany<E extends ServerEvent>(
    tabIds: readonly string[],
    event: E,
    ...args: EventArgs<E>
  ): number {
    const socketIds: string[] = [];
    for (const tabId of tabIds) {
      const socket = this.sockets.get(tabId);
      if (socket !== undefined) socketIds.push(socket.id);
    }
    if (socketIds.length === 0) return 0;
    if (this.namespace === undefined) {
      for (const tabId of tabIds) this.send(tabId, event, ...args);
    } else {
      // each socket is in the room of its own id; `local`: not through the Redis adapter
      (this.namespace.local.to(socketIds).emit as unknown as Emit)(event, ...args);
    }
    return socketIds.length;
  }

  /** To every tab this node welcomed: one encoding, written to each (socket-parser.ts). */
  toWelcomed<E extends ServerEvent>(event: E, ...args: EventArgs<E>): void {
    const room = this.namespace?.local.to(WELCOMED_ROOM);
    if (room) (room.emit as unknown as Emit)(event, ...args);
  }

  /** To every socket of this node, welcomed or still saying hello. */
  toAllHere<E extends ServerEvent>(event: E, ...args: EventArgs<E>): void {
    if (this.namespace) (this.namespace.local.emit as unknown as Emit)(event, ...args);
  }
}
