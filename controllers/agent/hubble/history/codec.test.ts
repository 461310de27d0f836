import { deflateRawSync } from 'node:zlib';
import { expect } from 'chai';
import type { Flow } from '../../../hubble/flow-types.js';
import { newLogger } from '../../../runtime/log.js';
import { FlowIds } from '../flow-ids.js';
import { HubbleObserver } from '../observer.js';
import { DENY_POLICY, mixedEvent, policyDrop, testSettings, testSources, traceNew } from '../testing.js';
import { ByteReader, ByteWriter } from './bytes.js';
import { BlockEncoder, decodeFlows, encodeFlows } from './codec.js';

const T0 = 1_700_000_000_000;

function observer(): HubbleObserver {
  return new HubbleObserver({ settings: testSettings({ capacity: 65535 }), sources: testSources(), events: async function* () {}, nodeAddress: '192.0.2.1', version: 'test', logger: newLogger('hubble-test', 'error') });
}

describe('hubble history block encoding', () => {
  it('varints round-trip up to 2^53, negative ones zigzagged', () => {
    const values = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1];
    const w = new ByteWriter(4);
    for (const v of values) w.uvarint(v);
    for (const v of [-1, -(2 ** 40), 5, -(2 ** 51)]) w.varint(v);
    w.string('zürich');
    const r = new ByteReader(Buffer.from(w.view()));
    expect(values.map(() => r.uvarint())).to.deep.equal(values);
    expect([r.varint(), r.varint(), r.varint(), r.varint()]).to.deep.equal([-1, -(2 ** 40), 5, -(2 ** 51)]);
    expect(r.string()).to.equal('zürich');
    expect(r.done).to.equal(true);
    expect(() => r.uvarint()).to.throw(/past the end/);
  });

  it('decodes to flows equal to those encoded: every event kind, policies, interfaces, ICMP, UDP, foreign uuids and fields', () => {
    const o = observer();
    const flows: Flow[] = [
      o.ingest(policyDrop(9090), T0 + 0.000_001),
      o.ingest(traceNew(), T0 + 1.5),
      o.ingest({ type: 'policy-verdict', endpointId: 12, srcIdentity: 5000, dstIdentity: 4242, direction: 'ingress', verdict: 0, matchType: 2, cookie: 77, packet: { srcIp: '10.0.1.5', dstIp: '10.0.0.2', protocol: 17, srcPort: 5353, dstPort: 53, flags: 0 } }, T0 + 2),
      o.ingest({ ...policyDrop(), cookie: 77, packet: { srcIp: '10.0.1.5', dstIp: '10.0.0.2', protocol: 1, srcPort: 0, dstPort: 0, flags: 0x0800 } }, T0 + 3),
      o.ingest({ ...traceNew(), packet: { srcIp: '198.51.100.7', dstIp: '10.0.0.2', protocol: 47, srcPort: 0, dstPort: 0, flags: 0 } }, T0 - 5000),
    ];
    expect(flows[3]!.ingress_denied_by).to.deep.equal([DENY_POLICY]);
    expect(flows[1]!.interface).to.not.equal(undefined);
    const foreign = { ...flows[0]!, uuid: 'not-a-uuid', IP: { ...flows[0]!.IP, encrypted: true }, l4: { TCP: { source_port: 1, destination_port: 2, flags: { SYN: true, ACK: false } } }, drop_reason_desc: 999, node_labels: ['a=b'] } as Flow;
    const all = [...flows, foreign];
    expect(decodeFlows(encodeFlows(all))).to.deep.equal(all);
    expect(decodeFlows(encodeFlows([]))).to.deep.equal([]);
  });

  it('a block encoded a flow at a time: finish() midway leaves it going, reset() starts the next with a fresh dictionary', () => {
    const o = observer();
    const flows: Flow[] = [];
    for (let i = 0; i < 300; i++) flows.push(o.ingest(mixedEvent(i), T0 + i * 0.25));
    const block = new BlockEncoder(4);
    for (const f of flows.slice(0, 100)) block.add(f);
    expect(decodeFlows(block.finish())).to.deep.equal(flows.slice(0, 100));
    for (const f of flows.slice(100, 200)) block.add(f);
    expect(block.finish()).to.deep.equal(encodeFlows(flows.slice(0, 200)));
    expect([block.count, block.minMs, block.maxMs]).to.deep.equal([200, T0, T0 + 199 * 0.25]);
    block.reset();
    expect(block.finish()).to.deep.equal(encodeFlows([]));
    // Out of order, as a block may receive them: times and uuids as deltas both ways.
    const shuffled = [...flows.slice(200)].reverse();
    for (const f of shuffled) block.add(f);
    expect(decodeFlows(block.finish())).to.deep.equal(shuffled);
    expect(block.finish()).to.deep.equal(encodeFlows(shuffled));
    expect([block.minMs, block.maxMs]).to.deep.equal([T0 + 200 * 0.25, T0 + 299 * 0.25]);
  });

  it('a corrupted block is refused, not misread', () => {
    const o = observer();
    const block = encodeFlows([o.ingest(policyDrop(), T0)]);
    expect(() => decodeFlows(block.subarray(0, block.length - 3))).to.throw(/flow history block/);
    expect(() => decodeFlows(Buffer.concat([block, Buffer.from([0])]))).to.throw(/end before the block does/);
  });

  it('a busy node`s flows take well under 40 bytes each once deflated', () => {
    const o = observer();
    const flows: Flow[] = [];
    for (let i = 0; i < 8192; i++) flows.push(o.ingest(mixedEvent(i), T0 + i * 0.37));
    const bytes = deflateRawSync(encodeFlows(flows)).length / flows.length;
    expect(bytes).to.be.below(40);
    expect(decodeFlows(encodeFlows(flows))).to.deep.equal(flows);
  });

  it('flow uuids are version 4, unique per run and across runs, counting up within one', () => {
    const a = new FlowIds();
    const b = new FlowIds();
    const ids = [a.take(), a.take(), b.take()];
    for (const id of ids) expect(id).to.match(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ids[1]!.slice(24)).to.equal('000000000001');
    expect(new Set(ids).size).to.equal(3);
    expect(() => new FlowIds(Buffer.alloc(4))).to.throw(/10 needed/);
  });
});
