/**
 * Benchmark dispatcher: `npm run bench -- <name> [args…]` runs bench `<name>` with the rest of
 * the arguments. Each bench is a module exporting `run(args: string[]): Promise<void>`; add one
 * by adding a line to `benches`.
 */
import { fileURLToPath } from 'node:url';

// the swarmgrad executable the benches' swarms start coordinators with (packages/swarm useCli)
process.env.SWARMGRAD_CLI ??= fileURLToPath(
  new URL('../apps/coordinator/bin/swarmgrad.js', import.meta.url),
);

interface Bench {
  run(args: string[]): Promise<void>;
}

const benches: Record<string, () => Promise<Bench>> = {
  codec: () => import('./codec.ts'),
  sim: () => import('./sim.ts'),
  coordinator: () => import('./coordinator.ts'),
  swarm: () => import('./swarm.ts'),
  quarantine: () => import('./quarantine.ts'),
  network: () => import('./network.ts'),
  exchange: () => import('./exchange.ts'),
  'cost-model': () => import('./cost-model.ts'),
  agreement: () => import('./agreement.ts'),
};

export async function main(argv: string[]): Promise<void> {
  const at = argv.findIndex((arg) => !arg.startsWith('-'));
  const name = at < 0 ? undefined : argv[at];
  const load = name !== undefined && Object.hasOwn(benches, name) ? benches[name] : undefined;
  if (load === undefined) {
    const available = Object.keys(benches).join(', ');
    console.error(`${name === undefined ? 'no bench given' : `unknown bench '${name}'`}`);
    console.error(`available benches: ${available}`);
    console.error('usage: npm run bench -- <name> [options…]');
    process.exit(1);
  }
  const rest = argv.filter((_, i) => i !== at);
  await (await load()).run(rest);
}

await main(process.argv.slice(2));
