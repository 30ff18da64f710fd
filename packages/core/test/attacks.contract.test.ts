import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FRAME_HEADER_BYTES, parseFrame } from '@swarmgrad/protocol';
import {
  attackNames,
  createAttack,
  isAttackName,
  type Attack,
  type AttackInput,
  type AttackName,
  type PeerRegister,
} from '../src/attacks/index.ts';
import { decodeFrameInto, encodeToFrame, getCodec } from '../src/codec/index.ts';
import { createRng } from '../src/random.ts';
import { allFinite, l2Norm } from '../src/vector.ts';

const f32 = (...xs: number[]): Float32Array => Float32Array.from(xs);

function vec(d: number, scale = 5): fc.Arbitrary<Float32Array> {
  return fc
    .array(fc.double({ min: -scale, max: scale, noNaN: true }), { minLength: d, maxLength: d })
    .map((a) => Float32Array.from(a));
}

/** An attacker's view: its honest message and 0..9 peers' registers (ids p0, p1, ...). */
const view = fc
  .record({ d: fc.integer({ min: 1, max: 12 }), n: fc.integer({ min: 0, max: 9 }) })
  .chain(({ d, n }) =>
    fc.record({
      honest: vec(d),
      peers: fc.array(vec(d), { minLength: n, maxLength: n }),
      seed: fc.nat(),
    }),
  )
  .map(({ honest, peers, seed }) => ({
    honest,
    peers: peers.map((update, i) => ({ id: `p${i}`, update })),
    seed,
  }));

/** A few iterations of views of one dimension (stateful attacks see a sequence). */
const views = fc
  .record({
    d: fc.integer({ min: 1, max: 10 }),
    n: fc.integer({ min: 0, max: 6 }),
    t: fc.integer({ min: 1, max: 6 }),
  })
  .chain(({ d, n, t }) =>
    fc.array(
      fc.record({
        honest: vec(d),
        peers: fc.array(vec(d), { minLength: n, maxLength: n }),
      }),
      { minLength: t, maxLength: t },
    ),
  );

function input(
  honest: Float32Array,
  peers: readonly PeerRegister[],
  iteration: number,
  seed: number,
): AttackInput {
  return { honest, peers, iteration, rng: createRng(seed) };
}

function copyPeers(peers: readonly PeerRegister[]): PeerRegister[] {
  return peers.map((p) => ({ id: p.id, update: Float32Array.from(p.update) }));
}

function play(
  attack: Attack,
  sequence: readonly { honest: Float32Array; peers: Float32Array[] }[],
): Float32Array[] {
  return sequence.map((s, t) =>
    attack.craft(
      input(
        s.honest,
        s.peers.map((update, i) => ({ id: `p${i}`, update })),
        t,
        1000 + t,
      ),
    ),
  );
}

describe.each(attackNames.map((name) => [name]))('attack contract: %s', (name) => {
  it('is registered under its name and says where it acts', () => {
    const attack = createAttack(name);
    expect(attack.name).toBe(name);
    expect(['message', 'data', 'frame']).toContain(attack.acts);
    expect(isAttackName(name)).toBe(true);
  });

  it('sends a finite vector of the honest length, whatever it sees', () => {
    fc.assert(
      fc.property(views, (sequence) => {
        const outs = play(createAttack(name), sequence);
        outs.forEach((out, t) => {
          expect(out.length).toBe(sequence[t]!.honest.length);
          expect(allFinite(out)).toBe(true);
        });
      }),
    );
  });

  it('is deterministic for a seed (fresh attackers, same inputs, same outputs)', () => {
    fc.assert(
      fc.property(views, (sequence) => {
        const a = play(createAttack(name), sequence);
        const b = play(createAttack(name), sequence);
        expect(b.map((v) => Array.from(v))).toEqual(a.map((v) => Array.from(v)));
      }),
    );
  });

  it('uses only what it is given: inputs untouched, no aliasing, unusable registers ignored', () => {
    fc.assert(
      fc.property(view, ({ honest, peers, seed }) => {
        const keepHonest = Float32Array.from(honest);
        const keepPeers = copyPeers(peers);
        const out = createAttack(name).craft(input(honest, peers, 3, seed));
        expect(Array.from(honest)).toEqual(Array.from(keepHonest));
        expect(peers.map((p) => Array.from(p.update))).toEqual(
          keepPeers.map((p) => Array.from(p.update)),
        );
        expect(out).not.toBe(honest);
        for (const p of peers) expect(out).not.toBe(p.update);
        // registers of the wrong length or with non-finite coordinates change nothing
        const junk: PeerRegister[] = [
          { id: 'a-junk', update: new Float32Array(honest.length + 1) },
          { id: 'a-nan', update: new Float32Array(honest.length).fill(NaN) },
        ];
        const withJunk = createAttack(name).craft(input(honest, [...junk, ...peers], 3, seed));
        expect(Array.from(withJunk)).toEqual(Array.from(out));
      }),
    );
  });

  it('changes a frame only when it acts on the frame', () => {
    const attack = createAttack(name);
    const codec = getCodec('fp32');
    const frame = encodeToFrame(codec.createEncoder(8, {}), f32(1, 2, 3, 4, 5, 6, 7, 8), {
      jobId: 1,
      iteration: 0,
      round: 0,
      senderSlot: 0,
    });
    const before = Uint8Array.from(frame);
    const sent = attack.corruptFrame(frame);
    if (attack.acts === 'frame') {
      expect(parseFrame(sent).ok).toBe(true);
      expect(decodeFrameInto(sent, new Float32Array(8), { dimension: 8 }).ok).toBe(false);
    } else {
      expect(Array.from(sent)).toEqual(Array.from(before));
    }
  });

  it('refuses an invalid strength', () => {
    const takesStrength: AttackName[] = [
      'sign-flip',
      'scale',
      'random',
      'alie',
      'ipm',
      'sign-optimal',
      'drift',
    ];
    if (takesStrength.includes(name)) {
      expect(() => createAttack(name, { strength: -1 })).toThrow(RangeError);
      expect(() => createAttack(name, { strength: NaN })).toThrow(RangeError);
    } else {
      expect(() => createAttack(name, { strength: -1 })).not.toThrow();
    }
  });
});

describe('attack registry', () => {
  it('lists every attack once and throws on an unknown name', () => {
    expect(new Set(attackNames).size).toBe(attackNames.length);
    expect(() => createAttack('nope' as AttackName)).toThrow(/no attack/);
    expect(isAttackName('nope')).toBe(false);
  });
});

/** Honest pool of a view: own message first, then the peers. */
function poolOf(honest: Float32Array, peers: readonly PeerRegister[]): Float32Array[] {
  return [honest, ...peers.map((p) => p.update)];
}

function meanStd(pool: readonly Float32Array[]): { mean: number[]; std: number[] } {
  const d = pool[0]!.length;
  const mean = Array.from(
    { length: d },
    (_, j) => pool.reduce((s, v) => s + v[j]!, 0) / pool.length,
  );
  const std = mean.map((m, j) =>
    Math.sqrt(pool.reduce((s, v) => s + (v[j]! - m) ** 2, 0) / pool.length),
  );
  return { mean, std };
}

const dist = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let j = 0; j < a.length; j++) s += (a[j]! - b[j]!) ** 2;
  return Math.sqrt(s);
};

const TOL = 1e-4;

describe('weak attacks (the fault modes kept from before)', () => {
  const honest = f32(1, -2, 3, 0.5);
  const craft = (name: AttackName, strength?: number) =>
    Array.from(
      createAttack(name, strength === undefined ? {} : { strength }).craft(input(honest, [], 0, 1)),
    );

  it('transform the honest message as documented', () => {
    expect(craft('sign-flip')).toEqual([-4, 8, -12, -2]);
    expect(craft('sign-flip', 1)).toEqual([-1, 2, -3, -0.5]);
    expect(craft('scale')).toEqual([100, -200, 300, 50]);
    expect(craft('zero')).toEqual([0, 0, 0, 0]);
    expect(craft('label-flip')).toEqual(Array.from(honest)); // acts on the data
    expect(craft('nan')).toEqual(Array.from(honest)); // acts on the frame
    const random = Float32Array.from(craft('random'));
    expect(l2Norm(random)).toBeCloseTo(10 * l2Norm(honest), 3);
    expect(l2Norm(Float32Array.from(craft('random', 1)))).toBeCloseTo(l2Norm(honest), 4);
  });

  it('stale replays the message of `lag` iterations before', () => {
    const attack = createAttack('stale', { lag: 2 });
    const sent = [0, 1, 2, 3, 4].map((r) => attack.craft(input(f32(r), [], r, 0))[0]);
    expect(sent).toEqual([0, 0, 0, 1, 2]);
    expect(() => createAttack('stale', { lag: 0 })).toThrow(RangeError);
  });

  it('nan: the frame passes the header and checksum checks and is refused as non-finite', () => {
    for (const codecName of ['one-bit', 'fp16', 'fp32'] as const) {
      const codec = getCodec(codecName);
      const encoder = codec.createEncoder(64, codec.defaultBlockSize > 0 ? { blockSize: 32 } : {});
      const frame = encodeToFrame(encoder, new Float32Array(64).fill(0.5), {
        jobId: 1,
        iteration: 0,
        round: 0,
        senderSlot: 0,
      });
      const bad = createAttack('nan').corruptFrame(frame);
      expect(parseFrame(bad).ok).toBe(true);
      const out = new Float32Array(64);
      const result = decodeFrameInto(bad, out, { dimension: 64 });
      expect(result.ok).toBe(false);
      if (!result.ok) expect(result.error.code).toBe('non-finite');
    }
    const short = new Uint8Array(FRAME_HEADER_BYTES);
    expect(createAttack('nan').corruptFrame(short)).toBe(short);
  });
});

describe('alie', () => {
  it('stays within z standard deviations of the honest mean per coordinate', () => {
    fc.assert(
      fc.property(view, fc.double({ min: 0.1, max: 3, noNaN: true }), ({ honest, peers }, z) => {
        const out = createAttack('alie', { strength: z }).craft(input(honest, peers, 0, 0));
        const { mean, std } = meanStd(poolOf(honest, peers));
        for (let j = 0; j < out.length; j++) {
          expect(Math.abs(out[j]! - mean[j]!)).toBeLessThanOrEqual(z * std[j]! + TOL);
          // and it does move: exactly z std below the mean
          expect(out[j]!).toBeCloseTo(mean[j]! - z * std[j]!, 3);
        }
      }),
    );
  });
});

describe('ipm', () => {
  it('has a negative inner product with the honest mean', () => {
    fc.assert(
      fc.property(view, ({ honest, peers }) => {
        const { mean } = meanStd(poolOf(honest, peers));
        fc.pre(Math.hypot(...mean) > 1e-3);
        const out = createAttack('ipm').craft(input(honest, peers, 0, 0));
        const ip = mean.reduce((s, m, j) => s + m * out[j]!, 0);
        expect(ip).toBeLessThan(0);
        expect(ip).toBeCloseTo(-0.1 * mean.reduce((s, m) => s + m * m, 0), 3);
      }),
    );
  });
});

describe('min-max / min-sum', () => {
  const pairwise = (pool: readonly Float32Array[]) => pool.map((a) => pool.map((b) => dist(a, b)));

  it('min-max: the largest distance to an honest input is at most the honest diameter, and tight', () => {
    fc.assert(
      fc.property(view, fc.constantFrom('std', 'unit', 'sign' as const), ({ honest, peers }, p) => {
        const pool = poolOf(honest, peers);
        const diameter = Math.max(...pairwise(pool).flat());
        const out = createAttack('min-max', { perturbation: p }).craft(input(honest, peers, 0, 0));
        const worst = Math.max(...pool.map((h) => dist(out, h)));
        expect(worst).toBeLessThanOrEqual(diameter * (1 + 1e-5) + TOL);
        const { mean } = meanStd(pool);
        if (dist(out, mean) > 1e-3) expect(worst).toBeGreaterThan(diameter * 0.999 - TOL);
      }),
    );
  });

  it('min-sum: its summed squared distance is at most the largest honest one, and tight', () => {
    fc.assert(
      fc.property(view, ({ honest, peers }) => {
        const pool = poolOf(honest, peers);
        const d2 = pairwise(pool).map((row) => row.reduce((s, x) => s + x * x, 0));
        const budget = Math.max(...d2);
        const out = createAttack('min-sum').craft(input(honest, peers, 0, 0));
        const sum = pool.reduce((s, h) => s + dist(out, h) ** 2, 0);
        expect(sum).toBeLessThanOrEqual(budget * (1 + 1e-5) + TOL);
        const { mean } = meanStd(pool);
        if (dist(out, mean) > 1e-3) expect(sum).toBeGreaterThan(budget * 0.999 - TOL);
      }),
    );
  });

  it('moves away from the mean when it sees peers that disagree', () => {
    const peers = [
      { id: 'a', update: f32(1, 0) },
      { id: 'b', update: f32(0, 1) },
    ];
    for (const name of ['min-max', 'min-sum'] as const) {
      const out = createAttack(name).craft(input(f32(1, 1), peers, 0, 0));
      expect(dist(out, [2 / 3, 2 / 3])).toBeGreaterThan(0.1);
    }
  });
});

describe('colluders that see the same honest pool send the same vector', () => {
  const colluding: AttackName[] = ['alie', 'ipm', 'min-max', 'min-sum'];
  it.each(colluding.map((n) => [n]))('%s', (name) => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 8 })
          .chain((d) => fc.array(vec(d), { minLength: 3, maxLength: 7 })),
        (pool) => {
          // two attackers whose own honest messages are pool[0] and pool[1]; each sees the rest
          const view = (own: number) => ({
            honest: pool[own]!,
            peers: pool.flatMap((update, i) => (i === own ? [] : [{ id: `w${i}`, update }])),
          });
          const a = view(0);
          const b = view(1);
          const x = createAttack(name).craft(input(a.honest, a.peers, 0, 0));
          const y = createAttack(name).craft(input(b.honest, b.peers, 0, 0));
          for (let j = 0; j < x.length; j++) expect(x[j]!).toBeCloseTo(y[j]!, 4);
        },
      ),
    );
  });
});

describe('mimic', () => {
  it('copies one honest peer, the same one while it stays visible', () => {
    const attack = createAttack('mimic');
    const a = { id: 'tab-b', update: f32(1, 2) };
    const b = { id: 'tab-a', update: f32(3, 4) };
    expect(Array.from(attack.craft(input(f32(9, 9), [a, b], 0, 0)))).toEqual([3, 4]);
    const b2 = { id: 'tab-a', update: f32(5, 6) };
    const c = { id: 'tab-0', update: f32(7, 7) };
    // tab-0 appears with a smaller id, but the target tab-a is still visible
    expect(Array.from(attack.craft(input(f32(9, 9), [c, a, b2], 1, 0)))).toEqual([5, 6]);
    // the target left: the smallest visible id
    expect(Array.from(attack.craft(input(f32(9, 9), [a, c], 2, 0)))).toEqual([7, 7]);
    // nobody visible: its own honest message
    expect(Array.from(attack.craft(input(f32(9, 8), [], 3, 0)))).toEqual([9, 8]);
  });
});

describe('sign-optimal', () => {
  it('flips the honest majority exactly where it is narrowest, with the 1-bit magnitude', () => {
    fc.assert(
      fc.property(
        view,
        fc.double({ min: 0.05, max: 1, noNaN: true }),
        ({ honest, peers }, share) => {
          const out = createAttack('sign-optimal', { strength: share }).craft(
            input(honest, peers, 0, 0),
          );
          const pool = poolOf(honest, peers);
          const d = honest.length;
          const a = Math.fround(honest.reduce((s, x) => s + Math.abs(x), 0) / d);
          const votes = Array.from({ length: d }, (_, j) =>
            pool.reduce((s, v) => s + Math.sign(v[j]!), 0),
          );
          const flipped: number[] = [];
          const kept: number[] = [];
          for (let j = 0; j < d; j++) {
            expect(Math.abs(out[j]!)).toBeCloseTo(a, 5);
            if (a === 0) continue;
            const v = votes[j]!;
            if (v !== 0 && Math.sign(out[j]!) === Math.sign(v)) kept.push(j);
            else flipped.push(j);
          }
          if (a === 0) return;
          // flipped ones disagree with (or push a tie of) the majority; none is wider than a kept one
          expect(flipped.length).toBeGreaterThanOrEqual(Math.floor(share * d));
          const widestFlipped = Math.max(0, ...flipped.map((j) => Math.abs(votes[j]!)));
          const narrowestKept = Math.min(Infinity, ...kept.map((j) => Math.abs(votes[j]!)));
          expect(widestFlipped).toBeLessThanOrEqual(narrowestKept);
        },
      ),
    );
  });

  it('turns a narrow sign vote with two attackers', () => {
    // 8 honest: coordinate 0 votes 5–3 (narrow), coordinate 1 votes 8–0 (wide)
    const honest = Array.from({ length: 8 }, (_, i) => f32(i < 5 ? 1 : -1, 1));
    const peers = honest.slice(1).map((update, i) => ({ id: `p${i}`, update }));
    const out = createAttack('sign-optimal').craft(input(honest[0]!, peers, 0, 0));
    expect(out[0]).toBeLessThan(0);
    expect(out[1]).toBeGreaterThan(0);
    const votes = [...honest, out, out].reduce((s, v) => s + Math.sign(v[0]!), 0);
    expect(votes).toBe(0); // 5 − 3 − 2: the majority is gone
  });
});

describe('drift', () => {
  it('adds c·σ per coordinate against the honest momentum, the same way every iteration', () => {
    const attack = createAttack('drift', { strength: 2 });
    const rng = createRng(5);
    for (let t = 0; t < 20; t++) {
      // honest updates point along (+1, −1) with noise
      const pool = Array.from({ length: 5 }, () =>
        f32(1 + rng.next() - 0.5, -1 + rng.next() - 0.5),
      );
      const honest = pool[0]!;
      const peers = pool.slice(1).map((update, i) => ({ id: `p${i}`, update }));
      const out = attack.craft(input(honest, peers, t, t));
      const { std } = meanStd(pool);
      expect(out[0]! - honest[0]!).toBeCloseTo(-2 * std[0]!, 4);
      expect(out[1]! - honest[1]!).toBeCloseTo(2 * std[1]!, 4);
    }
  });

  it('estimates the spread from its own history without peers', () => {
    const attack = createAttack('drift');
    const rng = createRng(3);
    let bias = 0;
    for (let t = 0; t < 50; t++) {
      const honest = f32(1 + rng.next() - 0.5);
      bias = attack.craft(input(honest, [], t, t))[0]! - honest[0]!;
    }
    expect(bias).toBeLessThan(0);
    expect(bias).toBeGreaterThan(-1);
  });
});
