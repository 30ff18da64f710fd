/** simple-peer's prebuilt browser bundle (no Node streams); the worker's PeerConstructor. */
declare module 'simple-peer/simplepeer.min.js' {
  import type { PeerConstructor } from '@swarmgrad/worker';
  const Peer: PeerConstructor;
  export default Peer;
}
