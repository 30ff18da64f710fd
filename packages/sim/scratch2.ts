import { scaleScenario, simulate } from './src/index.ts';
const t = performance.now();
const r = simulate(scaleScenario(Number(process.argv[2] ?? 10)), {
  threads: Number(process.argv[3] ?? 1),
});
console.log(r.final.iteration, r.final.accuracy, ((performance.now() - t) / 1000).toFixed(1), 's');
