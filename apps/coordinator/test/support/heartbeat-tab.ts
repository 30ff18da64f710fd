/**
 * A tab in a process of its own, for the heartbeat test (heartbeat.test.ts blocks the
 * coordinator's event loop, so the tab must not share it): a real socket.io client with the
 * tab's parser, WebSocket only, no reconnection, that says hello and then only answers the
 * coordinator's pings. One JSON line per event on stdout: `welcome`, `ping` (an engine.io
 * heartbeat ping received), `disconnect` (with socket.io's reason). Exits when stdin closes.
 *
 *   node --import tsx heartbeat-tab.ts <coordinator url>
 */
import { io, type Socket } from 'socket.io-client';
import {
  PROTOCOL_VERSION,
  type WorkerClientToServer,
  type WorkerServerToClient,
} from '@swarmgrad/protocol';
import { tabParser, WORKER_NAMESPACE } from '@swarmgrad/protocol/socket-parser';

const say = (line: Record<string, unknown>) =>
  process.stdout.write(`${JSON.stringify({ ...line, at: Date.now() })}\n`);

const socket: Socket<WorkerServerToClient, WorkerClientToServer> = io(
  `${process.argv[2]}${WORKER_NAMESPACE}`,
  { transports: ['websocket'], reconnection: false, forceNew: true, parser: tabParser },
);
socket.io.on('open', () => socket.io.engine.on('ping', () => say({ event: 'ping' })));
socket.on('ping', (ack) => ack()); // the coordinator's round-trip probe
socket.on('connect', () => {
  socket
    .timeout(10_000)
    .emitWithAck('hello', { protocolVersion: PROTOCOL_VERSION, kind: 'node', backend: 'cpu' })
    .then((answer) =>
      say(answer.ok ? { event: 'welcome', tabId: answer.value.tabId } : { event: 'refused' }),
    )
    .catch(() => say({ event: 'refused' }));
});
socket.on('disconnect', (reason) => say({ event: 'disconnect', reason }));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
