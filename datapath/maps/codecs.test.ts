import { expect } from 'chai';
import type { DropEvent, PolicyVerdictEvent, TraceEvent } from '../types.js';
import { decodeCtEntry, decodeCtTuple } from './ct.js';
import { decodeEvent, EventDecodeError } from './events.js';
import { decodeIpcacheKey, decodeRemoteEndpointInfo, encodeIpcacheKey, encodeRemoteEndpointInfo } from './ipcache.js';
import { decodeEndpointInfo, decodeEndpointKey, encodeEndpointInfo, encodeEndpointKey } from './lxc.js';
import { decodeMetricsKey, sumPerCpu } from './metrics.js';
import { decodePolicyKey, decodePolicyValue, encodePolicyKey, encodePolicyValue } from './policy.js';

describe('map codecs', function () {
  it('cilium_lxc: key holds the IPv4 address and family 1; info round-trips', function () {
    const key = encodeEndpointKey('10.0.1.2');
    expect(key.toString('hex')).to.equal('0a000102' + '00'.repeat(12) + '01' + '00' + '0000');
    expect(decodeEndpointKey(key)).to.equal('10.0.1.2');
    const info = { ifindex: 7, lxcId: 4095, flags: 0, mac: '02:aa:bb:cc:dd:ee', nodeMac: '0a:00:00:00:00:01', secId: 123456, parentIfindex: 0 };
    const buf = encodeEndpointInfo(info);
    expect(buf.subarray(16, 24).toString('hex')).to.equal('02aabbccddee0000');
    expect(decodeEndpointInfo(buf)).to.deep.equal(info);
    expect(() => encodeEndpointKey('10.0.1')).to.throw(/endpoint IPv4.*10\.0\.1/);
  });

  it('cilium_ipcache_v2: prefixlen counts 32 bits ahead of the address; host bits cleared', function () {
    const key = encodeIpcacheKey('10.1.2.3/16');
    expect(key.readUInt32LE(0)).to.equal(48);
    expect(key.readUInt8(7)).to.equal(1);
    expect(decodeIpcacheKey(key)).to.equal('10.1.0.0/16');
    expect(decodeIpcacheKey(encodeIpcacheKey('0.0.0.0/0'))).to.equal('0.0.0.0/0');
    expect(decodeIpcacheKey(encodeIpcacheKey('192.0.2.1'))).to.equal('192.0.2.1/32');
    const info = { identity: 16777217, tunnelEndpoint: '192.168.1.1', encryptKey: 0, flags: 0 };
    expect(decodeRemoteEndpointInfo(encodeRemoteEndpointInfo(info))).to.deep.equal(info);
    expect(() => encodeIpcacheKey('10.0.0.0/33')).to.throw(/ipcache prefix/);
  });

  it('policy: dport in network order, bits past the prefix cleared, flags carry deny and length', function () {
    const key = encodePolicyKey({ identity: 256, egress: true, protocol: 6, dport: 0x1f90, prefixLen: 24 });
    expect(key.toString('hex')).to.equal('40000000' + '00010000' + '01' + '06' + '1f90');
    const wide = encodePolicyKey({ identity: 256, egress: false, protocol: 6, dport: 0x1f93, prefixLen: 20 });
    expect(decodePolicyKey(wide)).to.deep.equal({ identity: 256, egress: false, protocol: 6, dport: 0x1f90, prefixLen: 20 });
    expect(decodePolicyKey(encodePolicyKey({ identity: 0, egress: false, protocol: 17, dport: 53, prefixLen: 0 }))).to.include({ protocol: 0, dport: 0 });
    const value = encodePolicyValue({ deny: true, prefixLen: 24 });
    expect(value.readUInt8(2)).to.equal(1 | (24 << 3));
    expect(decodePolicyValue(value)).to.deep.equal({ deny: true, prefixLen: 24, proxyPort: 0, authType: 0, cookie: 0 });
    const attrs = encodePolicyValue({ deny: false, prefixLen: 8, proxyPort: 15001, authType: 1, cookie: 0x01020304 });
    expect(attrs.toString('hex')).to.equal('3a99' + (8 << 3).toString(16) + '01' + '00000000' + '04030201');
    expect(decodePolicyValue(attrs)).to.deep.equal({ deny: false, prefixLen: 8, proxyPort: 15001, authType: 1, cookie: 0x01020304 });
    expect(() => encodePolicyValue({ deny: false, prefixLen: 8, authType: 128 })).to.throw(RangeError, /authType 128: must be an integer 0..127/);
    expect(() => encodePolicyKey({ identity: 1, egress: false, protocol: 6, dport: 1, prefixLen: 25 })).to.throw(RangeError, /prefix length 25/);
  });

  it('conntrack: tuple in packet orientation, hook from the flags byte', function () {
    const tuple = Buffer.from('0a0000020a000001' + '0050' + '04d2' + '06' + '01', 'hex');
    expect(decodeCtTuple(tuple)).to.deep.equal({ daddr: '10.0.0.2', saddr: '10.0.0.1', dport: 80, sport: 1234, protocol: 6, hook: 'ingress' });
    const entry = Buffer.alloc(40);
    entry.writeBigUInt64LE(3n, 0);
    entry.writeBigUInt64LE(180n, 8);
    entry.writeUInt32LE(8100, 16);
    entry.writeUInt16LE(0x4 | 0x2, 20);
    entry.writeUInt8(0x12, 22);
    entry.writeUInt32LE(42, 24);
    entry.writeUInt32LE(7, 28);
    entry.writeUInt32LE(31, 36);
    expect(decodeCtEntry(entry)).to.deep.equal({ packets: 3, bytes: 180, lifetime: 8100, rxClosing: false, txClosing: true, seenNonSyn: true, txFlagsSeen: 0x12, rxFlagsSeen: 0, srcIdentity: 42, policyRevision: 7, ifindex: 31 });
  });

  it('metrics: key fields and per-CPU sums', function () {
    expect(decodeMetricsKey(Buffer.from([133, 2, 0x10, 0x01, 1, 0, 0, 0]))).to.deep.equal({ reason: 133, direction: 'egress', line: 0x110, file: 1 });
    const slot = (count: number, bytes: number): Buffer => {
      const b = Buffer.alloc(16);
      b.writeBigUInt64LE(BigInt(count), 0);
      b.writeBigUInt64LE(BigInt(bytes), 8);
      return b;
    };
    expect(sumPerCpu([slot(2, 100), slot(0, 0), slot(5, 60)])).to.deep.equal({ count: 7, bytes: 160 });
  });
});

describe('event records', function () {
  // IPv4 + TCP SYN 10.0.0.1:40000 -> 10.0.0.2:443
  const headers = Buffer.from('4500002800004000400600000a0000010a000002' + '9c4001bb0000000000000000' + '5002ffff00000000', 'hex');

  function record(type: number, subtype: number, dir: number, tail: (b: Buffer) => void): Buffer {
    const b = Buffer.alloc(96);
    b.writeUInt8(type, 0);
    b.writeUInt8(subtype, 1);
    b.writeUInt16LE(12, 2);
    b.writeUInt32LE(54, 4);
    b.writeUInt16LE(headers.length, 8);
    b.writeUInt8(1, 10);
    b.writeUInt8(dir, 11);
    b.writeUInt32LE(300, 16);
    b.writeUInt32LE(400, 20);
    tail(b);
    headers.copy(b, 32);
    return b;
  }
  const packet = { srcIp: '10.0.0.1', dstIp: '10.0.0.2', protocol: 6, srcPort: 40000, dstPort: 443, flags: 0x02 };

  it('decodes drop, trace and policy-verdict records', function () {
    // The drop site: line 1234 of bpf_lxc.c (file id 2).
    const drop = record(1, 181, 1, (b) => { b.writeUInt16LE(1234, 24); b.writeUInt8(2, 26); b.writeUInt32LE(0xdeadbeef, 28); });
    expect(decodeEvent(drop)).to.deep.equal({
      type: 'drop', endpointId: 12, srcIdentity: 300, dstIdentity: 400, packet, reason: 181, direction: 'ingress', cookie: 0xdeadbeef, file: 2, line: 1234,
    } satisfies DropEvent);
    expect(decodeEvent(record(4, 5, 2, (b) => b.writeUInt8(3, 24)))).to.deep.equal({
      type: 'trace', endpointId: 12, srcIdentity: 300, dstIdentity: 400, packet, observationPoint: 5, ctState: 3,
    } satisfies TraceEvent);
    expect(decodeEvent(record(5, 0, 2, (b) => { b.writeUInt16LE(133, 24); b.writeUInt8(2, 26); b.writeUInt32LE(7, 28); }))).to.deep.equal({
      type: 'policy-verdict', endpointId: 12, srcIdentity: 300, dstIdentity: 400, packet, direction: 'egress', verdict: 133, matchType: 2, cookie: 7,
    } satisfies PolicyVerdictEvent);
  });

  it('summarises ICMP as type/code and refuses what it cannot read', function () {
    const icmp = Buffer.from('4500001c00000000400100000a0000010a000002' + '0303000000000000', 'hex');
    const b = record(1, 133, 1, () => undefined);
    b.fill(0, 32);
    icmp.copy(b, 32);
    b.writeUInt16LE(icmp.length, 8);
    expect((decodeEvent(b) as DropEvent).packet).to.deep.equal({ srcIp: '10.0.0.1', dstIp: '10.0.0.2', protocol: 1, srcPort: 0, dstPort: 0, flags: 0x0303 });
    expect(() => decodeEvent(record(9, 0, 1, () => undefined))).to.throw(EventDecodeError, /unknown message type 9/);
    expect(() => decodeEvent(Buffer.alloc(40))).to.throw(EventDecodeError, /40 bytes/);
    expect(() => decodeEvent(record(1, 133, 0, () => undefined))).to.throw(EventDecodeError, /direction byte 0/);
  });

  it('addresses past 127.255.255.255 and a capture cut before the ports', function () {
    const b = record(4, 0, 1, () => undefined);
    b.writeUInt32BE(0xc0a80a05, 32 + 12); // 192.168.10.5
    b.writeUInt32BE(0xffffffff, 32 + 16);
    expect((decodeEvent(b) as TraceEvent).packet).to.deep.equal({ ...packet, srcIp: '192.168.10.5', dstIp: '255.255.255.255' });
    b.writeUInt16LE(22, 8);
    expect((decodeEvent(b) as TraceEvent).packet).to.deep.equal({ srcIp: '192.168.10.5', dstIp: '255.255.255.255', protocol: 6, srcPort: 0, dstPort: 0, flags: 0 });
    b.writeUInt16LE(19, 8);
    expect((decodeEvent(b) as TraceEvent).packet).to.deep.equal({ srcIp: '0.0.0.0', dstIp: '0.0.0.0', protocol: 0, srcPort: 0, dstPort: 0, flags: 0 });
  });
});
