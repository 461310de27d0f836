import { expect } from 'chai';
import fc from 'fast-check';
import type { PolicyEntry } from '../types.js';
import { decodePolicyKey, decodePolicyValue } from './policy.js';
import { enforcingWhereEntries } from '../linux/testing/policy.js';
import { InvalidPolicyEntryError, policyMapContents, portRangePrefixes } from './policy-entries.js';

interface Row {
  identity: number;
  egress: boolean;
  protocol: number;
  dport: number;
  prefixLen: number;
  deny: boolean;
}

function rows(entries: PolicyEntry[], enforcement = enforcingWhereEntries(entries)[1]): Row[] {
  return [...policyMapContents(entries, enforcement).values()]
    .map(({ key, value }) => ({ ...decodePolicyKey(key), deny: decodePolicyValue(value).deny }))
    .sort((a, b) => a.identity - b.identity || Number(a.egress) - Number(b.egress) || a.protocol - b.protocol || a.dport - b.dport || a.prefixLen - b.prefixLen);
}

const BOTH = { ingress: true, egress: true };
const entry = (e: Partial<PolicyEntry>): PolicyEntry => ({ identity: 0, direction: 'ingress', protocol: 6, port: 0, deny: false, ...e });

describe('portRangePrefixes', function () {
  it('covers exactly the range with aligned power-of-two blocks', function () {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        const blocks = portRangePrefixes(lo, hi);
        let next = lo;
        for (const { port, bits } of blocks) {
          const size = 2 ** (16 - bits);
          expect(port).to.equal(next);
          expect(port % size).to.equal(0);
          next = port + size;
        }
        expect(next).to.equal(hi + 1);
        // The greedy split needs at most two blocks per bit.
        expect(blocks.length).to.be.at.most(32);
      }),
    );
  });

  it('splits 1000..1999 into the known seven blocks', function () {
    expect(portRangePrefixes(1000, 1999)).to.deep.equal([
      { port: 1000, bits: 13 },
      { port: 1008, bits: 12 },
      { port: 1024, bits: 7 },
      { port: 1536, bits: 8 },
      { port: 1792, bits: 9 },
      { port: 1920, bits: 10 },
      { port: 1984, bits: 12 },
    ]);
    expect(portRangePrefixes(0, 65535)).to.deep.equal([{ port: 0, bits: 0 }]);
  });
});

describe('policyMapContents', function () {
  it('allows everything in both directions when there are no entries', function () {
    expect(rows([])).to.deep.equal([
      { identity: 0, egress: false, protocol: 0, dport: 0, prefixLen: 0, deny: false },
      { identity: 0, egress: true, protocol: 0, dport: 0, prefixLen: 0, deny: false },
    ]);
  });

  it('enforces exactly the directions enforcement names, whatever the entries', function () {
    const e = [entry({ identity: 5, port: 80 })];
    expect(rows(e, { ingress: true, egress: false })).to.deep.equal([
      { identity: 0, egress: true, protocol: 0, dport: 0, prefixLen: 0, deny: false },
      { identity: 5, egress: false, protocol: 6, dport: 80, prefixLen: 24, deny: false },
    ]);
    expect(rows(e, { ingress: false, egress: true })).to.deep.equal([
      { identity: 0, egress: false, protocol: 0, dport: 0, prefixLen: 0, deny: false },
      { identity: 5, egress: false, protocol: 6, dport: 80, prefixLen: 24, deny: false },
    ]);
    // A policy whose peers match nothing today: enforcing with no entries holds nothing at all.
    expect(rows([], BOTH)).to.deep.equal([]);
    expect(() => policyMapContents(e, undefined as unknown as { ingress: boolean; egress: boolean })).to.throw(TypeError, /enforcement.ingress must be a boolean/);
  });

  it('carries proxy port, auth type and cookie; a deny keeps its cookie over the allows it covers', function () {
    const values = (entries: PolicyEntry[]): Array<Record<string, unknown>> =>
      [...policyMapContents(entries, BOTH).values()].map(({ key, value }) => ({ ...decodePolicyKey(key), ...decodePolicyValue(value) })).sort((a, b) => Number(a.prefixLen) - Number(b.prefixLen));
    expect(values([entry({ identity: 5, port: 80, proxyPort: 15001, authType: 1, cookie: 11 })])).to.deep.equal([
      { identity: 5, egress: false, protocol: 6, dport: 80, prefixLen: 24, deny: false, proxyPort: 15001, authType: 1, cookie: 11 },
    ]);
    expect(values([entry({ identity: 5, port: 80, cookie: 11 }), entry({ identity: 5, protocol: 6, deny: true, cookie: 22, proxyPort: 9 })])).to.deep.equal([
      { identity: 5, egress: false, protocol: 6, dport: 0, prefixLen: 8, deny: true, proxyPort: 0, authType: 0, cookie: 22 },
      { identity: 5, egress: false, protocol: 6, dport: 80, prefixLen: 24, deny: true, proxyPort: 0, authType: 0, cookie: 22 },
    ]);
    expect(() => policyMapContents([entry({ cookie: 2 ** 32 })], BOTH)).to.throw(InvalidPolicyEntryError, /cookie 4294967296: must be an integer 0..4294967295/);
  });

  it('encodes protocol-only, port, ICMP type and any-protocol ports', function () {
    const r = rows(
      [entry({ identity: 1, protocol: 17 }), entry({ identity: 2, protocol: 1, port: 8 }), entry({ identity: 3, protocol: 1, port: 0, endPort: 255 }), entry({ identity: 4, protocol: 0, port: 53 })],
      { ingress: true, egress: true },
    );
    expect(r).to.deep.equal([
      { identity: 1, egress: false, protocol: 17, dport: 0, prefixLen: 8, deny: false },
      { identity: 2, egress: false, protocol: 1, dport: 8 << 8, prefixLen: 16, deny: false },
      { identity: 3, egress: false, protocol: 1, dport: 0, prefixLen: 8, deny: false },
      { identity: 4, egress: false, protocol: 6, dport: 53, prefixLen: 24, deny: false },
      { identity: 4, egress: false, protocol: 17, dport: 53, prefixLen: 24, deny: false },
      { identity: 4, egress: false, protocol: 132, dport: 53, prefixLen: 24, deny: false },
    ]);
  });

  it('turns an allow covered by a deny of the same identity into a deny, and only those', function () {
    const r = rows([
      entry({ identity: 7, port: 1000, endPort: 1023 }), // 1000/13, 1008/12
      entry({ identity: 7, port: 1008, endPort: 1015, deny: true }), // 1008/13
      entry({ identity: 7, protocol: 17, port: 53 }),
      entry({ identity: 8, protocol: 0, deny: true }),
      entry({ identity: 8, port: 443 }),
      entry({ identity: 0, port: 443 }),
    ]);
    const deniesOf = (identity: number): Array<[number, number, boolean]> => r.filter((x) => x.identity === identity).map((x) => [x.dport, x.prefixLen, x.deny]);
    // 1008/12 (1008..1023) is wider than the deny 1008/13 (1008..1015): the datapath's longest
    // match for 1008..1015 is the deny itself, for 1016..1023 the allow.
    expect(deniesOf(7)).to.deep.equal([
      [1000, 21, false],
      [1008, 20, false],
      [1008, 21, true],
      [53, 24, false],
    ]);
    expect(deniesOf(8)).to.deep.equal([
      [0, 0, true],
      [443, 24, true],
    ]);
    expect(deniesOf(0)).to.deep.equal([
      [443, 24, false], // ingress
      [0, 0, false], // egress allow-all
    ]);
  });

  it('expands a port range of any protocol to TCP, UDP and SCTP, never to every protocol', function () {
    const r = rows([entry({ identity: 4, protocol: 0, port: 0, endPort: 100 })]).filter((x) => x.identity === 4);
    expect(r.map((x) => x.protocol)).to.have.members([...Array<number>(4).fill(6), ...Array<number>(4).fill(17), ...Array<number>(4).fill(132)]);
    // 0..100 is 0/10, 64/11, 96/14, 100/16: port prefix bits on top of the protocol's 8.
    expect(r.filter((x) => x.protocol === 6).map((x) => [x.dport, x.prefixLen])).to.deep.equal([
      [0, 18],
      [64, 19],
      [96, 22],
      [100, 24],
    ]);
    expect(rows([entry({ identity: 4, protocol: 0, port: 0, endPort: 65535 })]).filter((x) => x.identity === 4).map((x) => [x.protocol, x.prefixLen])).to.deep.equal([
      [6, 8],
      [17, 8],
      [132, 8],
    ]);
  });

  it('merges duplicates, deny winning', function () {
    expect(rows([entry({ identity: 3, port: 22 }), entry({ identity: 3, port: 22, deny: true }), entry({ identity: 3, port: 22 })]).filter((x) => x.identity === 3)).to.deep.equal([
      { identity: 3, egress: false, protocol: 6, dport: 22, prefixLen: 24, deny: true },
    ]);
  });

  it('rejects malformed entries, naming them', function () {
    const bad: Array<[Partial<PolicyEntry>, RegExp]> = [
      [{ port: 70000 }, /port must be an integer 0..65535/],
      [{ protocol: 47, port: 1 }, /protocol 47 has no ports/],
      [{ port: 90, endPort: 80 }, /endPort must be an integer port..65535/],
      [{ protocol: 1, port: 300 }, /ICMP types must be 0..255/],
      [{ protocol: 256 }, /protocol must be an integer 0..255/],
      [{ identity: -1 }, /identity must be an integer/],
    ];
    for (const [e, reason] of bad) {
      expect(() => policyMapContents([entry(e)], BOTH), JSON.stringify(e)).to.throw(InvalidPolicyEntryError, reason);
    }
  });

  it('refuses more entries than a policy map holds', function () {
    const many = Array.from({ length: 16384 }, (_, i) => entry({ identity: 1000 + i, port: 80 }));
    expect(() => policyMapContents(many, { ingress: true, egress: false })).to.throw(RangeError, /16385 map entries, more than the 16384/);
  });
});
