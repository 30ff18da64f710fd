import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { codecNames } from '@swarmgrad/protocol';
import {
  createRng,
  encodeProposal,
  frameDigest,
  gaussian,
  judgeProposal,
  type MemberAnswer,
} from '../src/index.ts';

function vector(seed: number, d = 3000): Float32Array {
  const rng = createRng(seed);
  const v = new Float32Array(d);
  for (let i = 0; i < d; i++) v[i] = 0.01 * gaussian(rng);
  return v;
}

const encoding = { blockSize: 1024, jobId: 7, clusterId: 2, iteration: 40 };

describe('encodeProposal', () => {
  it.each(codecNames)(
    '%s: the same update gives the same bytes, every time and everywhere',
    (codec) => {
      const update = vector(1);
      const a = encodeProposal(update, { ...encoding, codec });
      // a second encoding, after unrelated ones (no state carried between calls)
      encodeProposal(vector(2), { ...encoding, codec });
      const b = encodeProposal(Float32Array.from(update), { ...encoding, codec });
      expect(frameDigest(a)).toBe(frameDigest(b));
      // another update, iteration or cluster gives another frame
      expect(frameDigest(encodeProposal(vector(3), { ...encoding, codec }))).not.toBe(
        frameDigest(a),
      );
      expect(frameDigest(encodeProposal(update, { ...encoding, codec, iteration: 41 }))).not.toBe(
        frameDigest(a),
      );
    },
  );

  it('digests are SHA-256 in hex', () => {
    expect(frameDigest(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('judgeProposal', () => {
  const D = 'a'.repeat(64);
  const X = 'b'.repeat(64);
  const Y = 'c'.repeat(64);
  const computed = (digest: string): MemberAnswer => ({ kind: 'computed', digest });
  const abstain: MemberAnswer = { kind: 'abstain' };
  const judge = (live: string[], answers: [string, MemberAnswer][], final = false) =>
    judgeProposal({ digest: D, proposer: 'p', liveMembers: live, answers: new Map(answers), final })
      .kind;

  it('the only live member is confirmed by itself', () => {
    expect(judge(['p'], [])).toBe('confirmed');
  });

  it('four live members: the proposer and two confirmations make the majority', () => {
    const live = ['p', 'a', 'b', 'c'];
    expect(judge(live, [['a', computed(D)]])).toBe('waiting');
    expect(
      judge(live, [
        ['a', computed(D)],
        ['b', computed(D)],
      ]),
    ).toBe('confirmed');
  });

  it('a single lying confirmer can neither refute an honest proposer nor stop it', () => {
    const live = ['p', 'a', 'b', 'c'];
    expect(
      judge(live, [
        ['a', computed(X)],
        ['b', computed(D)],
        ['c', computed(D)],
      ]),
    ).toBe('confirmed');
    expect(judge(live, [['a', computed(X)]])).toBe('waiting');
  });

  it('a lying proposer is refuted by the others computing one common other digest', () => {
    const live = ['p', 'a', 'b', 'c'];
    const verdict = judgeProposal({
      digest: D,
      proposer: 'p',
      liveMembers: live,
      answers: new Map([
        ['a', computed(X)],
        ['b', computed(X)],
      ]),
    });
    expect(verdict).toEqual({ kind: 'refuted', refutedBy: ['a', 'b'], digest: X });
  });

  it('members that disagree among themselves refute nobody', () => {
    const live = ['p', 'a', 'b', 'c'];
    expect(
      judge(live, [
        ['a', computed(X)],
        ['b', computed(Y)],
        ['c', abstain],
      ]),
    ).toBe('unconfirmed');
  });

  it('two live members: the other one must confirm; abstaining leaves it unconfirmed', () => {
    expect(judge(['p', 'a'], [['a', computed(D)]])).toBe('confirmed');
    expect(judge(['p', 'a'], [['a', computed(X)]])).toBe('refuted');
    expect(judge(['p', 'a'], [['a', abstain]])).toBe('unconfirmed');
    expect(judge(['p', 'a'], [], true)).toBe('unconfirmed');
  });

  it('a proposer that left still counts its members: their majority confirms', () => {
    expect(judge(['a', 'b'], [['a', computed(D)]])).toBe('waiting');
    expect(
      judge(
        ['a', 'b'],
        [
          ['a', computed(D)],
          ['b', computed(D)],
        ],
      ),
    ).toBe('confirmed');
  });

  it('with a minimum, a proposer alone (or with one member) needs that member', () => {
    const lone = (live: string[], answers: [string, MemberAnswer][]) =>
      judgeProposal({
        digest: D,
        proposer: 'p',
        liveMembers: live,
        answers: new Map(answers),
        final: true,
        minimumLive: 2,
      }).kind;
    expect(lone(['p'], [])).toBe('unconfirmed');
    expect(lone(['p', 'a'], [['a', computed(D)]])).toBe('confirmed');
    expect(lone(['p', 'a'], [['a', abstain]])).toBe('unconfirmed');
  });

  it('answers from tabs that are not live members are ignored', () => {
    expect(
      judge(
        ['p', 'a', 'b'],
        [
          ['z', computed(D)],
          ['y', computed(D)],
        ],
        true,
      ),
    ).toBe('unconfirmed');
  });

  it('property: with an honest majority, an honest proposer is never refuted and a lying one never confirmed', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 11 }),
        fc.boolean(),
        fc.array(fc.constantFrom<'answer' | 'abstain' | 'late'>('answer', 'abstain', 'late'), {
          minLength: 12,
          maxLength: 12,
        }),
        (size, liars, proposerHonest, behaviour) => {
          // liars (including a lying proposer) are a minority of the live members
          const live = Array.from({ length: size }, (_, i) => (i === 0 ? 'p' : `m${i}`));
          // a lying proposer is one of the liars
          const liarCount = Math.min(proposerHonest ? liars : Math.max(1, liars), size);
          fc.pre(2 * liarCount < size);
          const isLiar = (i: number) => (proposerHonest ? i >= 1 && i <= liarCount : i < liarCount);
          const honestDigest = D;
          const sent = proposerHonest ? honestDigest : X;
          const answers = new Map<string, MemberAnswer>();
          live.forEach((id, i) => {
            if (i === 0) return;
            if (isLiar(i)) {
              answers.set(id, computed(proposerHonest ? Y : X)); // liars back the lie
            } else if (behaviour[i] === 'answer') answers.set(id, computed(honestDigest));
            else if (behaviour[i] === 'abstain') answers.set(id, abstain);
          });
          const verdict = judgeProposal({
            digest: sent,
            proposer: 'p',
            liveMembers: live,
            answers,
            final: true,
          });
          if (proposerHonest) return verdict.kind !== 'refuted';
          return verdict.kind !== 'confirmed';
        },
      ),
      { numRuns: 500 },
    );
  });
});
