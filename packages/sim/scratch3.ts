import { simulate } from './src/index.ts';
for (const pc of ['one-bit', 'fp32'] as const)
  for (const mode of ['majority', 'average'] as const) {
    const r = simulate({
      seed: 6,
      workers: 40,
      cluster: { size: 4, rebalance: false },
      training: { learningRate: 0.5, batchSize: 16 },
      aggregator: { name: 'mean' },
      quarantine: { enabled: false },
      agreement: { mode },
      proposalCodec: { name: pc },
      stop: { maxIterations: 200 },
      evalEvery: 50,
    });
    console.log(pc, mode, r.history.map((h) => h.accuracy.toFixed(3)).join(' '));
  }
