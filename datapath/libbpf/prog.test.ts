import { expect } from 'chai';
import path from 'node:path';
import { BpfError } from './errors.js';
import type { BpfObject } from './object.js';
import { BpfProgram } from './prog.js';
import { fixtureSuite, ipv4Packet, type FixtureSuite } from './testdata/fixtures.js';

describe('BpfProgram', function () {
  let suite: FixtureSuite | undefined;
  let obj: BpfObject | undefined;
  let prog: BpfProgram | undefined;
  let pinDir = '';

  before(async function () {
    suite = await fixtureSuite();
    pinDir = suite.pinDir;
    obj = suite.open();
    obj.load();
    prog = obj.program('fixture_classify');
  });
  after(function () {
    prog?.close();
    obj?.close();
    suite?.remove();
  });

  it('returns the packet as the program left it and a per-run duration', function () {
    const pkt = ipv4Packet({ protocol: 6, src: '192.168.0.1', dst: '192.168.0.2', payload: Buffer.alloc(20, 0xab) });
    const result = prog!.testRun({ data: pkt, repeat: 3 });
    expect(result.retval).to.equal(0);
    expect(result.dataOut).to.deep.equal(pkt);
    expect(result.durationNs).to.be.a('number');
    const truncated = prog!.testRun({ data: pkt, dataOutSize: pkt.length });
    expect(truncated.dataOut.length).to.equal(pkt.length);
  });

  it('passes a non-IPv4 frame untouched', function () {
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    expect(prog!.testRun({ data: arp }).retval).to.equal(0);
  });

  it('refuses a packet shorter than an Ethernet header, naming the program', function () {
    expect(() => prog!.testRun({ data: Buffer.alloc(10) })).to.throw(BpfError, /^test run program fixture_classify: Invalid argument \(errno 22\)\npacket is 10 bytes/);
  });

  it('pins and reopens by path as the same program', function () {
    const pinPath = path.join(pinDir, 'fixture_classify');
    prog!.pin(pinPath);
    const again = BpfProgram.openPinned(pinPath);
    try {
      expect(again.id).to.equal(prog!.id);
      expect(again.name).to.equal('fixture_classif');
      expect(again.testRun({ data: ipv4Packet({ protocol: 17, src: '1.1.1.1', dst: '1.1.1.2' }) }).retval).to.equal(2);
    } finally {
      again.close();
    }
    expect(() => prog!.pin(pinPath)).to.throw(BpfError, new RegExp(`^pin program fixture_classify at ${pinPath}: .*\\(errno 17\\)$`));
    expect(() => BpfProgram.openPinned(path.join(pinDir, 'absent'))).to.throw(BpfError, /^open pinned program .*absent: No such file or directory \(errno 2\)$/);
  });
});
