/**
 * A uPlot line chart that follows its container's width and takes new data without being
 * rebuilt. Series may have gaps (held-out points every few iterations, training loss every
 * iteration): `alignSeries` merges them onto one x axis with nulls, drawn with spanGaps.
 */
import { useEffect, useRef } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { formatClock, formatInt } from '../lib/format.ts';

export interface ChartSeries {
  label: string;
  color: string;
  scale: string;
  dash?: number[];
  format: (value: number) => string;
}

export interface ChartAxis {
  scale: string;
  side: 'left' | 'right';
  format: (value: number) => string;
  range?: [number, number];
}

export type XMode = 'iteration' | 'time';

interface Props {
  xMode: XMode;
  data: uPlot.AlignedData;
  series: ChartSeries[];
  axes: ChartAxis[];
  height?: number;
  testId?: string;
  /** Points of the main series, exposed as data-points for tests and screen readers. */
  points: number;
  label: string;
}

const AXIS = '#8b97b3';
const GRID = 'rgba(139, 151, 179, 0.14)';

/** Merges [x, y] lists onto one sorted x axis; missing values are null. */
export function alignSeries(
  lists: readonly (readonly [number, number | null][])[],
): uPlot.AlignedData {
  const xs = new Set<number>();
  for (const list of lists) for (const [x] of list) xs.add(x);
  const sorted = [...xs].sort((a, b) => a - b);
  const index = new Map(sorted.map((x, i) => [x, i]));
  const ys = lists.map((list) => {
    const y: (number | null)[] = new Array<number | null>(sorted.length).fill(null);
    for (const [x, v] of list) y[index.get(x)!] = v;
    return y;
  });
  return [sorted, ...ys] as uPlot.AlignedData;
}

/**
 * The canvas width that fits the container: clientWidth rounds a fractional width to the
 * nearest pixel, which can make the canvas half a pixel wider than its box (and a phone's page
 * scroll sideways); the floor of the laid-out width never does.
 */
function containerWidth(el: HTMLElement): number {
  return Math.max(240, Math.floor(el.getBoundingClientRect().width));
}

export function Chart({ xMode, data, series, axes, height = 220, testId, points, label }: Props) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const dataRef = useRef(data);
  dataRef.current = data;
  const shape = `${xMode}|${series.map((s) => `${s.label}:${s.scale}`).join(',')}|${axes
    .map((a) => a.scale)
    .join(',')}|${height}`;

  useEffect(() => {
    const el = container.current;
    if (!el) return;
    const scales: uPlot.Scales = { x: { time: xMode === 'time' } };
    for (const axis of axes)
      scales[axis.scale] = axis.range ? { range: axis.range } : { auto: true };
    const options: uPlot.Options = {
      width: containerWidth(el),
      height,
      scales,
      legend: { show: true, live: true },
      cursor: { drag: { x: true, y: false }, points: { size: 7 } },
      axes: [
        {
          stroke: AXIS,
          grid: { stroke: GRID, width: 1 },
          ticks: { stroke: GRID, width: 1 },
          font: '11px system-ui, sans-serif',
          ...(xMode === 'iteration'
            ? { values: (_u: uPlot, values: number[]) => values.map((v) => formatInt(v)) }
            : {}),
        },
        ...axes.map((axis): uPlot.Axis => ({
          scale: axis.scale,
          side: axis.side === 'left' ? 3 : 1,
          stroke: AXIS,
          grid: { show: axis.side === 'left', stroke: GRID, width: 1 },
          ticks: { stroke: GRID, width: 1 },
          font: '11px system-ui, sans-serif',
          size: 52,
          values: (_u, values) => values.map((v) => axis.format(v)),
        })),
      ],
      series: [
        {
          label: xMode === 'time' ? 'Time' : 'Iteration',
          value: (_u, v) =>
            v === null || v === undefined
              ? '—'
              : xMode === 'time'
                ? formatClock(v * 1000)
                : formatInt(v),
        },
        ...series.map((s): uPlot.Series => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          scale: s.scale,
          spanGaps: true,
          ...(s.dash ? { dash: s.dash } : {}),
          points: { size: 4, fill: s.color },
          value: (_u, v) => (v === null || v === undefined ? '—' : s.format(v)),
        })),
      ],
    };
    const u = new uPlot(options, dataRef.current, el);
    plot.current = u;
    const observer = new ResizeObserver(() => {
      const width = containerWidth(el);
      if (width !== u.width) u.setSize({ width, height });
    });
    observer.observe(el);
    return () => {
      observer.disconnect();
      u.destroy();
      plot.current = null;
    };
    // the chart is rebuilt only when its shape changes; data flows through setData below
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <div
      className="chart"
      ref={container}
      data-testid={testId}
      data-points={points}
      role="img"
      aria-label={`${label}: ${points} points`}
    />
  );
}
