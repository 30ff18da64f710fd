import { waitFor } from '@swarmgrad/test-support/harness';

/** What the multi-node tests read of one node's `/api/status`. */
export interface NodeView {
  iteration: number;
  phase: string;
  tabs: number;
  accuracy: number | null;
  evaluatedAt: number | null;
  clusters: { id: number; members: { tabId: string; live: boolean }[] }[];
  node: {
    id: string;
    redis: 'up' | 'down';
    leaseHolder: boolean;
    nodes: string[];
    checkpoints: number;
    lastCheckpoint: number;
    /** Tab connections this node holds. */
    sockets: number;
  };
}

export async function view(url: string): Promise<NodeView> {
  return (await (await fetch(`${url}/api/status`)).json()) as NodeView;
}

/** Every node's view once each has recorded an evaluation at `iteration` or later. */
export async function evaluatedOnEveryNode(urls: string[], iteration: number): Promise<NodeView[]> {
  return waitFor(
    async () => {
      const views = await Promise.all(urls.map(view));
      return views.every((x) => (x.evaluatedAt ?? 0) >= iteration) ? views : false;
    },
    `an evaluation at iteration ${iteration} or later on every node`,
    90_000,
  );
}
