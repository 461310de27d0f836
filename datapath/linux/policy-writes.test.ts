// safePolicyOrder against the model of the programs' policy lookup in ../maps/lookup-model.ts: every
// state the map passes through on the way from an old policy to a new one lets a packet pass only if
// the old or the new policy lets it pass, and the plan's peak is the true largest size on the way.
import { expect } from 'chai';
import fc from 'fast-check';
import { mapAllows, type ModelPacket } from '../maps/lookup-model.js';
import { policyMapContents } from '../maps/policy-entries.js';
import { IPPROTO_ICMP } from '../maps/protocols.js';
import type { PolicyEntry } from '../types.js';
import { diffContents, type MapEntry } from './map-sync.js';
import { safePolicyOrder } from './policy-writes.js';
import { enforcingWhereEntries } from './testing/policy.js';

const PORTS = { min: 78, max: 86 };
const entryArb: fc.Arbitrary<PolicyEntry> = fc
  .record({
    identity: fc.integer({ min: 0, max: 3 }),
    direction: fc.constantFrom('ingress' as const, 'egress' as const),
    protocol: fc.constantFrom(0, IPPROTO_ICMP, 6, 17),
    port: fc.integer(PORTS),
    span: fc.option(fc.integer({ min: 0, max: 5 }), { nil: undefined }),
    anyPort: fc.boolean(),
    deny: fc.boolean(),
  })
  .map(({ identity, direction, protocol, port, span, anyPort, deny }) => {
    const first = protocol === IPPROTO_ICMP ? port - PORTS.min : anyPort ? 0 : port;
    const endPort = span === undefined || (first === 0 && protocol !== IPPROTO_ICMP) ? undefined : first + span;
    return { identity, direction, protocol, port: first, endPort, deny };
  });
const policyArb = fc.array(entryArb, { maxLength: 8 });
const packetArb: fc.Arbitrary<ModelPacket> = fc.record({
  peerIdentity: fc.integer({ min: 1, max: 4 }),
  direction: fc.constantFrom('ingress' as const, 'egress' as const),
  protocol: fc.constantFrom(IPPROTO_ICMP, 6, 17, 132),
  port: fc.integer({ min: 0, max: PORTS.max + 2 }),
});

describe('safePolicyOrder', function () {
  it('never passes a packet that both the old and the new policy drop, and reports the true peak', function () {
    fc.assert(
      fc.property(policyArb, policyArb, fc.array(packetArb, { minLength: 1, maxLength: 40 }), (oldEntries, newEntries, packets) => {
        const before = policyMapContents(...enforcingWhereEntries(oldEntries));
        const after = policyMapContents(...enforcingWhereEntries(newEntries));
        const plan = safePolicyOrder(diffContents(before, after), before);
        const state = new Map<string, MapEntry>(before);
        let peak = state.size;
        const check = (step: number): void => {
          for (const p of packets) {
            if (mapAllows(state, p)) {
              expect(mapAllows(before, p) || mapAllows(after, p), `packet ${JSON.stringify(p)} passes after write ${step} of ${plan.writes.length}`).to.equal(true);
            }
          }
        };
        for (const [i, w] of plan.writes.entries()) {
          if (w.value === undefined) state.delete(w.hex);
          else state.set(w.hex, { key: w.key, value: w.value });
          peak = Math.max(peak, state.size);
          check(i + 1);
        }
        expect([...state.keys()].sort()).to.deep.equal([...after.keys()].sort());
        expect(plan.peak).to.equal(peak);
      }),
      { numRuns: 300 },
    );
  });
});
