/**
 * The network the end-to-end tabs link on (issue 14, item 5): every spec whose tabs open WebRTC
 * links runs them in a network lab (packages/swarm lab.ts, `lan` profile), not on this
 * machine's own interface. The coordinator (and Redis, for several nodes) runs in the lab's
 * public namespace, the tabs' Chromium (and Node workers) in a home on the lab's bridge; the
 * tests reach the coordinator's API through the lab's API veth. Root only, as CI runs.
 */
import {
  createNetworkLab,
  type LaunchSwarmOptions,
  type LabHome,
  type NetworkLab,
  type StartCoordinatorOptions,
} from '@swarmgrad/swarm';

/** launchSwarm's `network` for the suite: a `lan` lab, up to eight tabs per home and Chromium. */
export const e2eNetwork = {
  profile: 'lan',
  tabsPerHome: 8,
} as const satisfies NonNullable<LaunchSwarmOptions['network']>;

export interface E2eLab {
  readonly lab: NetworkLab;
  /** The home the tabs' Chromium and Node workers run in. */
  readonly home: LabHome;
  /**
   * startCoordinator options that run it in the lab's public namespace; its `args` exempt the
   * lab's addresses from address groups (the tabs share one home: one machine's tabs, as on a
   * LAN, whose addresses form no group either). A spec with args of its own appends these.
   */
  readonly serve: Required<Pick<StartCoordinatorOptions, 'execPrefix' | 'address' | 'args'>>;
  /** argv prefix that runs a command in the home (a Node worker). */
  readonly inHome: readonly string[];
  destroy(): Promise<void>;
}

export async function openLab(): Promise<E2eLab> {
  const lab = await createNetworkLab({ profile: e2eNetwork.profile });
  try {
    const home = await lab.addHome();
    return {
      lab,
      home,
      serve: {
        execPrefix: lab.inPublic([]),
        address: lab.publicAddress,
        args: ['--exempt-addresses', `private,self,${lab.publicAddress}/24`],
      },
      inHome: ['ip', 'netns', 'exec', home.namespace],
      destroy: () => lab.destroy(),
    };
  } catch (error) {
    await lab.destroy();
    throw error;
  }
}
