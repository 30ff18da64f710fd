#!/usr/bin/env node
// Makes sure the network lab (`swarmgrad swarm --network …`, packages/swarm/src/lab.ts) has
// Debian's nftables (`nft`, the NAT routers' masquerade and firewall rules). Installs it with
// apt when running as root; otherwise says how, in one line, and fails.
import { ensureAptBinary } from './ensure-apt.mjs';

export function ensureNftables() {
  return ensureAptBinary({
    binary: '/usr/sbin/nft',
    pkg: 'nftables',
    env: 'NFT',
    why: 'the network lab builds NAT routers with it',
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exit(ensureNftables() ? 0 : 1);
}
