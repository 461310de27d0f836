import { expect } from 'chai';
import { Btf } from './btf.js';
import { BpfError } from './errors.js';
import type { BpfObject } from './object.js';
import { fixtureSuite, type FixtureSuite } from './testdata/fixtures.js';

// struct fixture_record in testdata/fixture.c as C lays it out on every BPF target: the union is
// 8-byte aligned, so it starts at 16 after four bytes of padding.
const FIXTURE_RECORD = { size: 24, saddr: 0, daddr: 4, protocol: 8, verdict: 9, pad: 10, seen: 16, seen_lo: 16, seen_hi: 20 };

describe('Btf', function () {
  let suite: FixtureSuite | undefined;
  let obj: BpfObject | undefined;

  before(async function () {
    suite = await fixtureSuite();
    obj = suite.open();
  });
  after(function () {
    obj?.close();
    suite?.remove();
  });

  it('reads struct size and member offsets, including members of anonymous unions and structs', function () {
    const btf = obj!.btf();
    const { size, ...offsets } = FIXTURE_RECORD;
    expect(btf.structSize('fixture_record')).to.equal(size);
    for (const [member, offset] of Object.entries(offsets)) expect(btf.memberOffset('fixture_record', member), member).to.equal(offset);
    expect(btf.memberSize('fixture_record', 'seen')).to.equal(8);
    expect(btf.memberSize('fixture_record', 'pad')).to.equal(2);
  });

  it('walks dotted paths through named nested structs', function () {
    const btf = obj!.btf();
    expect(btf.structSize('fixture_tuple')).to.equal(16);
    expect(btf.structSize('fixture_flow')).to.equal(24);
    expect(btf.memberOffset('fixture_flow', 'reverse.dport')).to.equal(10);
    expect(btf.memberSize('fixture_flow', 'reverse.pad')).to.equal(3);
    expect(btf.memberOffset('fixture_flow', 'packets')).to.equal(16);
    // A struct from <linux/bpf.h> the program uses is described too.
    expect(btf.memberOffset('__sk_buff', 'data')).to.equal(76);
    expect(() => btf.memberOffset('fixture_record', 'saddr.x')).to.throw(BpfError, /descend into non-struct BTF member fixture_record\.saddr/);
  });

  it('finds global variables in their section', function () {
    expect(obj!.btf().globalVariable('.rodata', 'fixture_udp_verdict')).to.deep.equal({ offset: 0, size: 4 });
  });

  it('names what it cannot find', function () {
    const btf = obj!.btf();
    expect(() => btf.structSize('no_such_struct')).to.throw(BpfError, /^find BTF struct no_such_struct in .*fixture\.o: No such file or directory \(errno 2\)$/);
    expect(() => btf.memberOffset('fixture_record', 'nope')).to.throw(BpfError, /^find BTF member fixture_record\.nope in .*fixture\.o: .*\(errno 2\)$/);
  });

  it('reads the same layout back from the kernel BTF of a loaded map', function () {
    const loaded = suite!.open();
    try {
      loaded.load();
      const map = loaded.map('fixture_last_record');
      const kernelBtf = Btf.fromKernelId(map.btfId);
      try {
        expect(map.btfId).to.be.greaterThan(0);
        expect(kernelBtf.structSize('fixture_record')).to.equal(FIXTURE_RECORD.size);
        expect(kernelBtf.memberOffset('fixture_record', 'seen_hi')).to.equal(FIXTURE_RECORD.seen_hi);
      } finally {
        kernelBtf.close();
        map.close();
      }
      expect(() => kernelBtf.structSize('fixture_record')).to.throw(BpfError, /use closed BTF/);
    } finally {
      loaded.close();
    }
  });

  it('is unusable once its object is closed', function () {
    const other = suite!.open();
    const btf = other.btf();
    other.close();
    expect(() => btf.structSize('fixture_record')).to.throw(BpfError, /use closed BPF object/);
  });
});
