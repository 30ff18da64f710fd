/**
 * Bytes on the wire against what fp32 would have cost: proposals to the coordinator, its
 * broadcast deltas, and the peer traffic the tabs report; and the frames the coordinator relayed
 * between tabs whose link does not connect.
 */
import { wirePaths, type DashboardStatus, type WirePath } from '@swarmgrad/protocol';
import { bitsPerParameter, formatBytes, formatInt, formatNumber } from '../lib/format.ts';

const PATH_LABELS: Record<WirePath, string> = {
  peer: 'Tab to tab',
  proposal: 'To coordinator',
  broadcast: 'From coordinator',
  relay: 'Carried for tabs',
};

const PATH_TITLES: Record<WirePath, string> = {
  peer: "the tabs' coded updates over their WebRTC data channels, as the tabs report them",
  proposal: 'cluster updates the proposers sent the coordinator',
  broadcast: 'iteration frames the coordinator sent',
  relay: 'frames the coordinator carried between tabs whose link does not connect',
};

export function WirePanel({ status }: { status: DashboardStatus }) {
  const { bytesSent, fp32EquivalentBytes, compression } = status.wire;
  const share = fp32EquivalentBytes > 0 ? Math.min(1, bytesSent / fp32EquivalentBytes) : 0;
  const nominal = bitsPerParameter(status.job.codec);
  return (
    <div className="wire">
      <div className="wire__headline">
        <span className="wire__ratio" data-testid="compression">
          {compression === null ? '—' : `${formatNumber(compression, 3)}×`}
        </span>
        <span className="wire__caption">
          less than fp32
          <br />
          {compression === null
            ? 'nothing sent yet'
            : `${formatNumber(32 / compression, 3)} bits per parameter overall`}
        </span>
      </div>
      <div
        className="bars"
        role="img"
        aria-label={`sent ${formatBytes(bytesSent)} of ${formatBytes(fp32EquivalentBytes)} fp32`}
      >
        <div className="bars__row">
          <span className="bars__label">As fp32</span>
          <span className="bars__track">
            <span
              className="bars__fill bars__fill--muted"
              style={{ width: fp32EquivalentBytes > 0 ? '100%' : '0%' }}
            />
          </span>
          <span className="bars__value">{formatBytes(fp32EquivalentBytes)}</span>
        </div>
        <div className="bars__row">
          <span className="bars__label">Sent</span>
          <span className="bars__track">
            <span
              className="bars__fill"
              style={{ width: bytesSent > 0 ? `max(3px, ${(share * 100).toFixed(2)}%)` : '0%' }}
            />
          </span>
          <span className="bars__value" data-testid="bytes-sent">
            {formatBytes(bytesSent)}
          </span>
        </div>
      </div>
      <dl className="facts facts--compact" data-testid="wire-paths">
        {wirePaths.map((path) => (
          <div key={path}>
            <dt title={PATH_TITLES[path]}>{PATH_LABELS[path]}</dt>
            <dd data-testid={`wire-${path}`} data-bytes={status.wire.byPath[path]}>
              {formatBytes(status.wire.byPath[path])}
            </dd>
          </div>
        ))}
      </dl>
      <dl className="facts facts--compact">
        <div>
          <dt>Saved</dt>
          <dd>{formatBytes(Math.max(0, fp32EquivalentBytes - bytesSent))}</dd>
        </div>
        <div>
          <dt>Codec</dt>
          <dd
            title={
              status.job.codec.name.includes('one-bit')
                ? `block size ${status.job.codec.blockSize}`
                : undefined
            }
          >
            {status.job.codec.name}
          </dd>
        </div>
        <div>
          <dt>Nominal</dt>
          <dd>{formatNumber(nominal, 3)} bit/param</dd>
        </div>
        <div>
          <dt>Relayed</dt>
          <dd
            data-testid="relayed-frames"
            title={`frames the coordinator carried between tabs whose WebRTC link does not connect (${formatBytes(status.relay.bytes)}); links relayed now: ${status.relay.pairs}`}
          >
            {formatInt(status.relayedFrames)} frames
          </dd>
        </div>
        <div>
          <dt>Iteration frames</dt>
          <dd
            data-testid="iteration-frames"
            title="iteration frames the coordinator wrote: to one relay tab per cluster (it forwards them over the data channels), directly to tabs no relay covers, and to tabs that asked for one they missed"
          >
            {formatInt(status.iterationFrames.relay)} to relays,{' '}
            {formatInt(status.iterationFrames.direct)} direct,{' '}
            {formatInt(status.iterationFrames.request)} asked
          </dd>
        </div>
      </dl>
    </div>
  );
}
