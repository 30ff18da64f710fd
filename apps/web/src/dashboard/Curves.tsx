/**
 * Held-out accuracy, and held-out plus training loss, over iterations or over wall time.
 */
import { useMemo } from 'react';
import type { DashboardEvaluation } from '@swarmgrad/protocol';
import { Chart, alignSeries, type XMode } from './Chart.tsx';
import type { TrainingPoint } from './useDashboard.ts';
import { formatNumber, formatPercent } from '../lib/format.ts';

const ACCURACY = '#34d399';
const TARGET = 'rgba(251, 191, 36, 0.8)';
const HELD_OUT_LOSS = '#5b8cff';
const TRAINING_LOSS = '#c084fc';

interface Props {
  xMode: XMode;
  evaluations: DashboardEvaluation[];
  iterations: TrainingPoint[];
  targetAccuracy: number;
}

const xOf = (mode: XMode, p: { iteration: number; at: number }): number =>
  mode === 'time' ? p.at / 1000 : p.iteration;

export function AccuracyChart({ xMode, evaluations, targetAccuracy }: Omit<Props, 'iterations'>) {
  const data = useMemo(() => {
    const acc = evaluations.map((e) => [xOf(xMode, e), e.accuracy] as [number, number]);
    const target = acc.map(([x]) => [x, targetAccuracy] as [number, number]);
    return alignSeries([acc, target]);
  }, [xMode, evaluations, targetAccuracy]);
  return (
    <Chart
      label="Held-out accuracy"
      testId="accuracy-chart"
      points={evaluations.length}
      xMode={xMode}
      data={data}
      series={[
        {
          label: 'Held-out accuracy',
          color: ACCURACY,
          scale: 'acc',
          format: (v) => formatPercent(v),
        },
        {
          label: 'Target',
          color: TARGET,
          scale: 'acc',
          dash: [6, 4],
          format: (v) => formatPercent(v, 0),
        },
      ]}
      axes={[
        { scale: 'acc', side: 'left', range: [0, 1], format: (v) => `${Math.round(v * 100)}%` },
      ]}
    />
  );
}

export function LossChart({ xMode, evaluations, iterations }: Omit<Props, 'targetAccuracy'>) {
  const training = iterations.filter((p) => p.trainingLoss !== null);
  const data = useMemo(
    () =>
      alignSeries([
        evaluations.map((e) => [xOf(xMode, e), e.loss] as [number, number]),
        iterations
          .filter((p) => p.trainingLoss !== null)
          .map((p) => [xOf(xMode, p), p.trainingLoss] as [number, number]),
      ]),
    [xMode, evaluations, iterations],
  );
  return (
    <Chart
      label="Loss"
      testId="loss-chart"
      points={evaluations.length + training.length}
      xMode={xMode}
      data={data}
      series={[
        {
          label: 'Held-out loss',
          color: HELD_OUT_LOSS,
          scale: 'loss',
          format: (v) => formatNumber(v),
        },
        {
          label: 'Training loss',
          color: TRAINING_LOSS,
          scale: 'loss',
          format: (v) => formatNumber(v),
        },
      ]}
      axes={[{ scale: 'loss', side: 'left', format: (v) => formatNumber(v, 2) }]}
    />
  );
}
