import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { IPPROTO_TCP, IPPROTO_UDP } from '../maps/protocols.js';
import { BpfError } from './errors.js';
import { BpfMap } from './map.js';
import { BpfObject } from './object.js';
import { compileFixture, ipv4Packet, makeBpffsDir, makeTempDir, removeDir, u32 } from './testdata/fixtures.js';

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;

describe('BpfObject', function () {
  let buildDir: string | undefined;
  let pinDir: string | undefined;
  let fixture = '';
  let rejected = '';
  const toClose: Array<{ close(): void }> = [];
  function track<T extends { close(): void }>(x: T): T {
    toClose.push(x);
    return x;
  }

  before(async function () {
    buildDir = makeTempDir();
    fixture = await compileFixture('fixture', buildDir);
    rejected = await compileFixture('rejected', buildDir);
  });
  after(function () {
    removeDir(buildDir);
  });
  beforeEach(function () {
    pinDir = makeBpffsDir();
  });
  afterEach(function () {
    for (const x of toClose.splice(0).reverse()) x.close();
    removeDir(pinDir);
  });

  function loadFixture(setup?: (obj: BpfObject) => void): BpfObject {
    const obj = track(BpfObject.open(fixture, { pinRoot: pinDir }));
    setup?.(obj);
    obj.load();
    return obj;
  }

  it('loads a tc program whose verdicts follow the packet protocol', function () {
    const obj = loadFixture();
    const prog = track(obj.program('fixture_classify'));
    expect(prog.name).to.equal('fixture_classify');
    expect(prog.id).to.be.greaterThan(0);
    const tcp = ipv4Packet({ protocol: IPPROTO_TCP, src: '10.0.0.1', dst: '10.0.0.2', payload: Buffer.alloc(20) });
    const udp = ipv4Packet({ protocol: IPPROTO_UDP, src: '10.0.0.1', dst: '10.0.0.2' });
    expect(prog.testRun({ data: tcp }).retval).to.equal(TC_ACT_OK);
    expect(prog.testRun({ data: udp }).retval).to.equal(TC_ACT_SHOT);
    expect(prog.testRun({ data: udp, repeat: 5 }).retval).to.equal(TC_ACT_SHOT);
    const counts = track(obj.map('fixture_proto_count'));
    expect(counts.lookup(u32(IPPROTO_TCP))?.readBigUInt64LE()).to.equal(1n);
    expect(counts.lookup(u32(IPPROTO_UDP))?.readBigUInt64LE()).to.equal(6n);
    const last = track(obj.map('fixture_last_record')).lookup(u32(0));
    expect(last?.subarray(0, 10).toString('hex')).to.equal('0a0000010a0000021102');
  });

  it('pins LIBBPF_PIN_BY_NAME maps under pinRoot and reuses them on the next load', function () {
    const first = loadFixture();
    const pinPath = path.join(pinDir ?? '', 'fixture_proto_count');
    expect(existsSync(pinPath)).to.equal(true);
    const firstId = track(first.map('fixture_proto_count')).id;
    const firstPrivateId = track(first.map('fixture_last_record')).id;
    track(first.program('fixture_classify')).testRun({ data: ipv4Packet({ protocol: IPPROTO_TCP, src: '1.1.1.1', dst: '2.2.2.2' }) });
    first.close();

    const second = loadFixture();
    const reused = track(second.map('fixture_proto_count'));
    expect(reused.id).to.equal(firstId);
    expect(reused.lookup(u32(IPPROTO_TCP))?.readBigUInt64LE()).to.equal(1n);
    expect(track(BpfMap.openPinned(pinPath)).id).to.equal(firstId);
    // Maps without a pinning attribute are private to each load.
    expect(track(second.map('fixture_last_record')).id).to.not.equal(firstPrivateId);
  });

  it('sets a const volatile global before load', function () {
    const verdict = Buffer.alloc(4);
    verdict.writeUInt32LE(TC_ACT_OK);
    const obj = loadFixture((o) => o.setGlobal('fixture_udp_verdict', verdict));
    const udp = ipv4Packet({ protocol: IPPROTO_UDP, src: '10.0.0.1', dst: '10.0.0.2' });
    expect(track(obj.program('fixture_classify')).testRun({ data: udp }).retval).to.equal(TC_ACT_OK);
    expect(() => obj.setGlobal('fixture_udp_verdict', verdict)).to.throw(BpfError, /set global after load of .*fixture_udp_verdict/);
  });

  it('rejects globals that do not exist or do not fit', function () {
    const obj = track(BpfObject.open(fixture, { pinRoot: pinDir }));
    expect(() => obj.setGlobal('no_such_global', Buffer.alloc(4))).to.throw(BpfError, /find BTF \.rodata variable no_such_global in .*fixture\.o: .*\(errno 2\)/);
    expect(() => obj.setGlobal('fixture_udp_verdict', Buffer.alloc(2))).to.throw(BpfError, /value is 2 bytes, variable is 4/);
  });

  it('hands out maps and programs that outlive the object', function () {
    const obj = loadFixture();
    const prog = track(obj.program('fixture_classify'));
    const counts = track(obj.map('fixture_proto_count'));
    obj.close();
    expect(prog.testRun({ data: ipv4Packet({ protocol: IPPROTO_UDP, src: '10.0.0.1', dst: '10.0.0.2' }) }).retval).to.equal(TC_ACT_SHOT);
    expect(counts.lookup(u32(IPPROTO_UDP))?.readBigUInt64LE()).to.equal(1n);
    expect(() => obj.map('fixture_proto_count')).to.throw(BpfError, /use closed BPF object/);
  });

  it('names missing maps, programs and files', function () {
    const obj = loadFixture();
    expect(() => obj.map('nope')).to.throw(BpfError, /^find map nope in .*fixture\.o: .*\(errno 2\)$/);
    expect(() => obj.program('nope')).to.throw(BpfError, /^find program nope in .*fixture\.o: .*\(errno 2\)$/);
    const missing = path.join(buildDir ?? '', 'missing.o');
    expect(() => BpfObject.open(missing)).to.throw(BpfError, new RegExp(`^open BPF object ${missing}: No such file or directory \\(errno 2\\)`));
    const unloaded = track(BpfObject.open(fixture, { pinRoot: pinDir }));
    expect(() => unloaded.map('fixture_proto_count')).to.throw(BpfError, /not loaded/);
  });

  it('puts the verifier log tail and libbpf warnings into a failed load', function () {
    const obj = track(BpfObject.open(rejected));
    let err: BpfError | undefined;
    try {
      obj.load();
    } catch (e) {
      err = e as BpfError;
    }
    expect(err).to.be.instanceOf(BpfError);
    expect(err?.errno).to.equal(13);
    expect(err?.op).to.equal('load BPF object');
    expect(err?.object).to.equal(rejected);
    expect(err?.message).to.contain("prog 'fixture_unchecked'");
    expect(err?.message).to.contain('verifier log (tail):');
    expect(err?.message).to.match(/invalid access to packet/);
  });
});
