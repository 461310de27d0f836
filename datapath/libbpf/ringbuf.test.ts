import { expect } from 'chai';
import { BpfError } from './errors.js';
import { BpfMap } from './map.js';
import type { BpfObject } from './object.js';
import type { BpfProgram } from './prog.js';
import { RingBuffer } from './ringbuf.js';
import { fixtureSuite, ipv4Packet, type FixtureSuite } from './testdata/fixtures.js';

interface FixtureRecord {
  saddr: string;
  daddr: string;
  protocol: number;
  verdict: number;
  seen: bigint;
}

// struct fixture_record in testdata/fixture.c (24 bytes, layout checked in btf.test.ts).
function decode(data: Buffer): FixtureRecord {
  return {
    saddr: [...data.subarray(0, 4)].join('.'),
    daddr: [...data.subarray(4, 8)].join('.'),
    protocol: data.readUInt8(8),
    verdict: data.readUInt8(9),
    seen: data.readBigUInt64LE(16),
  };
}

describe('RingBuffer', function () {
  let suite: FixtureSuite | undefined;
  let obj: BpfObject | undefined;
  let prog: BpfProgram | undefined;
  let events: BpfMap | undefined;
  let ring: RingBuffer | undefined;
  let received: Buffer[] = [];

  before(async function () {
    suite = await fixtureSuite();
    obj = suite.open();
    obj.load();
    prog = obj.program('fixture_classify');
  });
  beforeEach(function () {
    received = [];
    events = obj!.map('fixture_events');
    ring = new RingBuffer(events, (data) => received.push(data));
  });
  afterEach(function () {
    ring?.close();
    events?.close();
  });
  after(function () {
    prog?.close();
    obj?.close();
    suite?.remove();
  });

  function send(protocol: number, src: string): void {
    prog!.testRun({ data: ipv4Packet({ protocol, src, dst: '10.9.9.9' }) });
  }

  it('delivers the record a test run emitted, in order, through poll and consume', function () {
    expect(ring!.poll(0)).to.equal(0);
    send(17, '10.0.0.1');
    send(6, '10.0.0.2');
    expect(ring!.poll(1000)).to.equal(2);
    expect(received.map(decode)).to.deep.equal([
      { saddr: '10.0.0.1', daddr: '10.9.9.9', protocol: 17, verdict: 2, seen: 1n },
      { saddr: '10.0.0.2', daddr: '10.9.9.9', protocol: 6, verdict: 0, seen: 1n },
    ]);
    send(17, '10.0.0.3');
    expect(ring!.consume()).to.equal(1);
    expect(decode(received[2]!)).to.include({ saddr: '10.0.0.3', protocol: 17, seen: 2n });
    expect(ring!.consume()).to.equal(0);
  });

  it('hands over copies: a kept record stays as it was after the ring reused its slot', function () {
    send(17, '10.0.0.1');
    ring!.poll(1000);
    const first = received[0]!;
    // The fixture ring holds 128 records of 32 bytes: three rounds of 100 wrap it.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) send(6, '10.0.0.2');
      expect(ring!.consume()).to.equal(100);
    }
    expect(decode(first)).to.include({ saddr: '10.0.0.1', protocol: 17 });
  });

  it('waits off the main thread in pollAsync and delivers records on it', async function () {
    const pending = ring!.pollAsync(5000);
    expect(() => ring!.consume()).to.throw(BpfError, /already polling map fixture_events/);
    setImmediate(() => send(1, '10.0.0.4'));
    expect(await pending).to.equal(1);
    expect(decode(received[0]!)).to.include({ saddr: '10.0.0.4', protocol: 1, verdict: 0 });
  });

  it('stops and rethrows when the record handler throws', function () {
    const failing = new RingBuffer(events!, () => {
      throw new Error('handler broke');
    });
    try {
      send(17, '10.0.0.5');
      send(17, '10.0.0.6');
      expect(() => failing.consume()).to.throw(Error, 'handler broke');
      // libbpf counts the failed record as consumed; the ones behind it stay in the ring.
      expect(ring!.consume()).to.equal(1);
      expect(decode(received[0]!).saddr).to.equal('10.0.0.6');
    } finally {
      failing.close();
    }
  });

  it('refuses maps that are not ring buffers and use after close', function () {
    const hash = BpfMap.create({ type: 'hash', name: 'lbt_notrb', keySize: 4, valueSize: 4, maxEntries: 1 });
    try {
      expect(() => new RingBuffer(hash, () => undefined)).to.throw(BpfError, /^open ring buffer on map lbt_notrb of type hash: Invalid argument \(errno 22\)$/);
    } finally {
      hash.close();
    }
    ring!.close();
    ring!.close();
    expect(() => ring!.poll(0)).to.throw(BpfError, /poll closed ring buffer of map fixture_events/);
  });
});
