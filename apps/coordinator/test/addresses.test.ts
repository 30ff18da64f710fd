/** Client addresses and address groups (addresses.ts): proxies, prefixes, exempt ranges, joins. */
import { describe, expect, it } from 'vitest';
import { networkInterfaces } from 'node:os';
import { AddressGate, blockListOf, networkOf, normalizeAddress } from '../src/addresses.ts';

describe('addresses', () => {
  it('normalizes socket and header forms', () => {
    expect(normalizeAddress('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(normalizeAddress(' 203.0.113.9:4431 ')).toBe('203.0.113.9');
    expect(normalizeAddress('[2001:DB8::1]:443')).toBe('2001:db8::1');
    expect(normalizeAddress('fe80::1%eth0')).toBe('fe80::1');
    expect(normalizeAddress('unknown')).toBeUndefined();
    expect(normalizeAddress('')).toBeUndefined();
  });

  it('cuts addresses to their network', () => {
    expect(networkOf('203.0.113.77', 32)).toBe('203.0.113.77/32');
    expect(networkOf('203.0.113.77', 24)).toBe('203.0.113.0/24');
    expect(networkOf('203.0.113.77', 0)).toBe('0.0.0.0/0');
    expect(networkOf('2001:db8:aa:bb:1:2:3:4', 64)).toBe('2001:db8:aa:bb:0:0:0:0/64');
    expect(networkOf('2001:db8::ff', 48)).toBe('2001:db8:0:0:0:0:0:0/48');
    expect(networkOf('2001:db8:abcd:ef12::', 52)).toBe('2001:db8:abcd:e000:0:0:0:0/52');
    expect(networkOf('::ffff:1.2.3.4', 128)).toBe('0:0:0:0:0:ffff:102:304/128');
  });

  it('believes X-Forwarded-For only from a trusted proxy, at its rightmost untrusted hop', () => {
    const gate = new AddressGate({ trustProxy: ['127.0.0.1', '10.0.0.0/8'] });
    // from a trusted proxy: the hop the proxies saw, not what the client wrote on the left
    const xff = { 'x-forwarded-for': '6.6.6.6, 203.0.113.9, 10.1.2.3' };
    expect(gate.clientAddress('::ffff:127.0.0.1', xff)).toBe('203.0.113.9');
    // every hop trusted: the leftmost
    expect(gate.clientAddress('127.0.0.1', { 'x-forwarded-for': '10.9.9.9' })).toBe('10.9.9.9');
    // garbage on the left stops the walk at the last good hop
    expect(gate.clientAddress('127.0.0.1', { 'x-forwarded-for': 'junk, 10.0.0.5' })).toBe(
      '10.0.0.5',
    );
    // from anyone else the header is ignored
    expect(gate.clientAddress('198.51.100.4', xff)).toBe('198.51.100.4');
    // no header: the socket's address
    expect(gate.clientAddress('127.0.0.1', {})).toBe('127.0.0.1');
  });

  it('ignores every header without --trust-proxy and says so once', () => {
    let warnings = 0;
    const gate = new AddressGate({}, () => warnings++);
    expect(gate.clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.9' })).toBe('127.0.0.1');
    gate.clientAddress('127.0.0.1', { 'x-forwarded-for': '203.0.113.10' });
    expect(warnings).toBe(1);
  });

  it('reads a configured header instead', () => {
    const gate = new AddressGate({ trustProxy: ['127.0.0.1'], clientHeader: 'cf-connecting-ip' });
    const headers = { 'cf-connecting-ip': '2001:db8::7', 'x-forwarded-for': '203.0.113.9' };
    expect(gate.clientAddress('127.0.0.1', headers)).toBe('2001:db8::7');
    expect(gate.clientAddress('127.0.0.1', { 'cf-connecting-ip': 'nonsense' })).toBe('127.0.0.1');
  });

  it('groups by prefix and leaves exempt ranges ungrouped', () => {
    const gate = new AddressGate({ ipv4Prefix: 24 });
    expect(gate.groupOf('203.0.113.9')).toBe('203.0.113.0/24');
    expect(gate.groupOf('203.0.113.200')).toBe('203.0.113.0/24');
    expect(gate.groupOf('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2:0:0:0:0/64');
    for (const exempt of ['127.0.0.1', '10.1.1.1', '192.168.1.9', '172.20.0.1', '::1', 'fd00::1'])
      expect(gate.groupOf(exempt)).toBeUndefined();
    expect(gate.groupOf(undefined)).toBeUndefined();
    // this host's own addresses (a tab on the coordinator's machine, e.g. a CI swarm reaching
    // it on its LAN address, which need not be a private one)
    const own = Object.values(networkInterfaces())
      .flatMap((list) => list ?? [])
      .map((item) => item.address);
    expect(own.length).toBeGreaterThan(0);
    const selfOnly = new AddressGate({ exempt: ['self'] });
    for (const address of own) expect(selfOnly.groupOf(normalizeAddress(address))).toBeUndefined();
    expect(selfOnly.groupOf('203.0.113.9')).toBe('203.0.113.9/32');
    for (const address of own) expect(gate.groupOf(normalizeAddress(address))).toBeUndefined();
    // `none`: every address is grouped, loopback included
    expect(new AddressGate({ exempt: ['none'] }).groupOf('127.0.0.1')).toBe('127.0.0.1/32');
  });

  it('limits new tabs per group to the burst, each group on its own', async () => {
    const gate = new AddressGate({ joinBurst: 3, joinsPerMinute: 6 });
    const a = [];
    for (let i = 0; i < 4; i++) a.push(await gate.admitJoin('203.0.113.9/32'));
    expect(a.map((r) => r.ok)).toEqual([true, true, true, false]);
    const refused = a[3]!;
    // the window refills at 6 a minute: 3 joins take 30 s
    if (!refused.ok) expect(refused.retryInMs).toBeGreaterThan(25_000);
    expect((await gate.admitJoin('203.0.113.10/32')).ok).toBe(true);
  });

  it('refuses bad ranges and prefixes', () => {
    expect(() => blockListOf(['10.0.0.0/33'])).toThrow(RangeError);
    expect(() => blockListOf(['example.com'])).toThrow(RangeError);
    expect(() => blockListOf(['10.0.0.0/8/1'])).toThrow(RangeError);
    expect(() => new AddressGate({ ipv6Prefix: 129 })).toThrow(RangeError);
    expect(() => new AddressGate({ joinBurst: 0 })).toThrow(RangeError);
  });
});
