/**
 * The shape of `window.__swarmgrad`, the volunteer page's test hook (apps/web/src/volunteer/
 * debug.ts), read by the headless swarms of packages/swarm, e2e/ and bench/. Types only and no
 * DOM names, so the Node side can import them too. The worker's status type is a parameter
 * (`SwarmgradDebug<WorkerStatus>`): the protocol package imports nothing of the workspace.
 */

export interface DataChannelTraffic {
  tabId: string;
  state: string;
  /**
   * Frames (one update each) and bytes the worker wrote to this link, all attempts, when the
   * getStats() below was asked for; `framesSentAfter`: when its answer came. The tab goes on
   * sending meanwhile, so the stats' message count lies between the two.
   */
  framesSent: number;
  framesSentAfter: number;
  bytesSent: number;
  /** Of framesSent and bytesSent: peer messages (confirm requests and vouchers), not updates. */
  controlFramesSent: number;
  controlBytesSent: number;
  /** From getStats() of the link's current RTCPeerConnection ('data-channel' reports). */
  stats: { bytesSent: number; messagesSent: number; channels: number } | null;
  /** The ICE candidate types (host, srflx, prflx, relay) of the link's selected candidate
   * pair, local and remote, from the same getStats(); null before a pair is selected. */
  candidatePair: { local: string; remote: string } | null;
}

export interface GradientRun {
  /** tf.getBackend() while the gradient was computed. */
  backend: string;
  loss: number;
  gradient: number[];
  ms: number;
}

export interface GradientCheck {
  model: string;
  dimension: number;
  batch: number;
  iteration: number;
  /** The WebGPU adapter's isFallbackAdapter (undefined: no adapter). */
  fallbackAdapter: boolean | undefined;
  adapterInfo: Record<string, string> | undefined;
  webgpu: GradientRun | { error: string };
  cpu: GradientRun | { error: string };
}

export interface SwarmgradDebug<Status = unknown> {
  /** The tab worker's full status (@swarmgrad/worker's WorkerStatus); undefined before Donate. */
  status(): Status | undefined;
  dataChannels(): Promise<DataChannelTraffic[]>;
  gradientCheck(): Promise<GradientCheck>;
}
