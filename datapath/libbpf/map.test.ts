import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ipv4Bytes } from '../maps/ipv4.js';
import { BpfError } from './errors.js';
import { BPF_F_NO_PREALLOC, BpfMap, numPossibleCpus } from './map.js';
import { makeBpffsDir, removeDir, u32, u64 } from './testdata/fixtures.js';

/** struct bpf_lpm_trie_key with a 4-byte IPv4 address. */
function lpmKey(prefixLen: number, addr: string): Buffer {
  return Buffer.concat([u32(prefixLen), ipv4Bytes(addr)]);
}

function expectBpfError(body: () => unknown, errno: number, ...named: string[]): BpfError {
  let caught: unknown;
  try {
    body();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a BpfError').to.be.instanceOf(BpfError);
  const err = caught as BpfError;
  expect(err.errno).to.equal(errno);
  expect(err.message).to.contain(`(errno ${errno})`);
  for (const text of named) expect(err.message).to.contain(text);
  return err;
}

describe('BpfMap', function () {
  const open: BpfMap[] = [];
  function track(map: BpfMap): BpfMap {
    open.push(map);
    return map;
  }
  afterEach(function () {
    for (const m of open.splice(0)) m.close();
  });

  it('creates a hash map whose kernel info matches the request', function () {
    const m = track(BpfMap.create({ type: 'hash', name: 'lbt_hash', keySize: 4, valueSize: 8, maxEntries: 64 }));
    expect(m.fd).to.be.greaterThan(2);
    expect(m.id).to.be.greaterThan(0);
    expect({ name: m.name, type: m.type, keySize: m.keySize, valueSize: m.valueSize, maxEntries: m.maxEntries }).to.deep.equal({
      name: 'lbt_hash', type: 'hash', keySize: 4, valueSize: 8, maxEntries: 64,
    });
  });

  it('does create, read, update and delete on a hash map with update flags', function () {
    const m = track(BpfMap.create({ type: 'hash', name: 'lbt_crud', keySize: 4, valueSize: 8, maxEntries: 8 }));
    expect(m.lookup(u32(1))).to.equal(undefined);
    m.update(u32(1), u64(10), 'noexist');
    expect(m.lookup(u32(1))).to.deep.equal(u64(10));
    expectBpfError(() => m.update(u32(1), u64(11), 'noexist'), 17, 'lbt_crud', 'key 01000000');
    m.update(u32(1), u64(12), 'exist');
    expect(m.lookup(u32(1))).to.deep.equal(u64(12));
    expectBpfError(() => m.update(u32(2), u64(1), 'exist'), 2, 'lbt_crud');
    expect(m.delete(u32(1))).to.equal(true);
    expect(m.delete(u32(1))).to.equal(false);
    expect(m.lookup(u32(1))).to.equal(undefined);
  });

  it('iterates every key and entry of a hash map', function () {
    const m = track(BpfMap.create({ type: 'hash', name: 'lbt_iter', keySize: 4, valueSize: 8, maxEntries: 128 }));
    for (let i = 0; i < 100; i++) m.update(u32(i), u64(i * 3));
    const keys = [...m.keys()].map((k) => k.readUInt32LE()).sort((a, b) => a - b);
    expect(keys).to.deep.equal(Array.from({ length: 100 }, (_, i) => i));
    for (const [k, v] of m.entries()) expect(Number(v.readBigUInt64LE())).to.equal(k.readUInt32LE() * 3);
  });

  it('reports E2BIG for an array index past max entries and for a full hash', function () {
    const arr = track(BpfMap.create({ type: 'array', name: 'lbt_arr', keySize: 4, valueSize: 4, maxEntries: 4 }));
    arr.update(u32(3), u32(33));
    expect(arr.lookup(u32(3))).to.deep.equal(u32(33));
    expect(arr.lookup(u32(0))).to.deep.equal(u32(0));
    expect([...arr.keys()].map((k) => k.readUInt32LE())).to.deep.equal([0, 1, 2, 3]);
    expectBpfError(() => arr.update(u32(4), u32(1)), 7, 'lbt_arr', 'key 04000000');
    const full = track(BpfMap.create({ type: 'hash', name: 'lbt_full', keySize: 4, valueSize: 4, maxEntries: 2 }));
    full.update(u32(1), u32(1));
    full.update(u32(2), u32(2));
    expectBpfError(() => full.update(u32(3), u32(3)), 7, 'lbt_full');
  });

  it('rejects keys and values of the wrong size before calling the kernel', function () {
    const m = track(BpfMap.create({ type: 'hash', name: 'lbt_size', keySize: 4, valueSize: 8, maxEntries: 4 }));
    expectBpfError(() => m.lookup(Buffer.alloc(3)), 22, 'lbt_size', 'key is 3 bytes, map takes 4');
    expectBpfError(() => m.update(u32(1), Buffer.alloc(4)), 22, 'lbt_size', 'value is 4 bytes, map takes 8');
  });

  it('names the map in creation failures', function () {
    expectBpfError(() => BpfMap.create({ type: 'hash', name: 'lbt_zero', keySize: 0, valueSize: 8, maxEntries: 4 }), 22, 'create map lbt_zero (hash)');
  });

  it('evicts the least recently used entry of a full LRU hash instead of failing', function () {
    const m = track(BpfMap.create({ type: 'lru_hash', name: 'lbt_lru', keySize: 4, valueSize: 4, maxEntries: 256 }));
    for (let i = 0; i < 1024; i++) m.update(u32(i), u32(i));
    const count = [...m.keys()].length;
    expect(count).to.be.greaterThan(0).and.at.most(256);
    expect(m.lookup(u32(1023))).to.deep.equal(u32(1023));
  });

  it('finds the longest matching prefix in an LPM trie', function () {
    const m = track(BpfMap.create({ type: 'lpm_trie', name: 'lbt_lpm', keySize: 8, valueSize: 4, maxEntries: 16, flags: BPF_F_NO_PREALLOC }));
    m.update(lpmKey(0, '0.0.0.0'), u32(2));
    m.update(lpmKey(8, '10.0.0.0'), u32(100));
    m.update(lpmKey(24, '10.1.2.0'), u32(200));
    m.update(lpmKey(32, '10.1.2.3'), u32(300));
    const lookup = (addr: string) => m.lookup(lpmKey(32, addr))?.readUInt32LE();
    expect(lookup('10.1.2.3')).to.equal(300);
    expect(lookup('10.1.2.4')).to.equal(200);
    expect(lookup('10.9.9.9')).to.equal(100);
    expect(lookup('192.168.1.1')).to.equal(2);
    expect(m.delete(lpmKey(0, '0.0.0.0'))).to.equal(true);
    expect(lookup('192.168.1.1')).to.equal(undefined);
    expect([...m.keys()]).to.have.length(3);
  });

  it('keeps one value per possible CPU in per-CPU hash and array maps', function () {
    const cpus = numPossibleCpus();
    expect(cpus).to.be.greaterThan(0);
    const hash = track(BpfMap.create({ type: 'percpu_hash', name: 'lbt_pch', keySize: 4, valueSize: 4, maxEntries: 8 }));
    hash.update(u32(7), u32(5));
    expect(hash.lookupPerCpu(u32(7))).to.deep.equal(Array.from({ length: cpus }, () => u32(5)));
    const arr = track(BpfMap.create({ type: 'percpu_array', name: 'lbt_pca', keySize: 4, valueSize: 12, maxEntries: 2 }));
    expect(arr.rawValueSize).to.equal(16 * cpus);
    const raw = Buffer.alloc(arr.rawValueSize);
    for (let cpu = 0; cpu < cpus; cpu++) raw.writeUInt32LE(cpu + 1, cpu * 16 + 8);
    arr.update(u32(1), raw);
    const values = arr.lookupPerCpu(u32(1));
    expect(values.map((v) => v.length)).to.deep.equal(Array.from({ length: cpus }, () => 12));
    expect(values.map((v) => v.readUInt32LE(8))).to.deep.equal(Array.from({ length: cpus }, (_, i) => i + 1));
    expect(hash.lookupPerCpu(u32(8))).to.deep.equal([]);
    expectBpfError(() => track(BpfMap.create({ type: 'hash', name: 'lbt_nopc', keySize: 4, valueSize: 4, maxEntries: 1 })).lookupPerCpu(u32(0)), 22, 'lbt_nopc');
  });

  it('holds inner maps in hash-of-maps and array-of-maps, reading back their ids', function () {
    const inner = track(BpfMap.create({ type: 'hash', name: 'lbt_inner', keySize: 4, valueSize: 4, maxEntries: 4 }));
    const hom = track(BpfMap.create({ type: 'hash_of_maps', name: 'lbt_hom', keySize: 4, valueSize: 4, maxEntries: 4, innerMapFd: inner.fd }));
    hom.update(u32(9), u32(inner.fd));
    expect(hom.lookup(u32(9))?.readUInt32LE()).to.equal(inner.id);
    const aom = track(BpfMap.create({ type: 'array_of_maps', name: 'lbt_aom', keySize: 4, valueSize: 4, maxEntries: 2, innerMapFd: inner.fd }));
    aom.update(u32(1), u32(inner.fd));
    expect(aom.lookup(u32(1))?.readUInt32LE()).to.equal(inner.id);
    expect(aom.lookup(u32(0))).to.equal(undefined);
  });

  it('creates ringbuf and prog_array maps', function () {
    const rb = track(BpfMap.create({ type: 'ringbuf', name: 'lbt_rb', keySize: 0, valueSize: 0, maxEntries: 4096 }));
    expect(rb.type).to.equal('ringbuf');
    const pa = track(BpfMap.create({ type: 'prog_array', name: 'lbt_pa', keySize: 4, valueSize: 4, maxEntries: 4 }));
    expect(pa.type).to.equal('prog_array');
    expect(pa.lookup(u32(0))).to.equal(undefined);
  });

  describe('batch operations', function () {
    it('updates, looks up and deletes a hash map in batches larger than one chunk', function () {
      const m = track(BpfMap.create({ type: 'hash', name: 'lbt_batch', keySize: 4, valueSize: 8, maxEntries: 2048 }));
      const entries: Array<[Buffer, Buffer]> = Array.from({ length: 1000 }, (_, i) => [u32(i), u64(i + 1)]);
      m.updateBatch(entries);
      const got = m.lookupBatch().map(([k, v]) => [k.readUInt32LE(), Number(v.readBigUInt64LE())]);
      got.sort((a, b) => (a[0] ?? 0) - (b[0] ?? 0));
      expect(got).to.deep.equal(entries.map(([k, v]) => [k.readUInt32LE(), Number(v.readBigUInt64LE())]));
      m.deleteBatch(entries.slice(0, 600).map(([k]) => k));
      expect(m.lookupBatch()).to.have.length(400);
      expectBpfError(() => m.deleteBatch([u32(0)]), 2, 'lbt_batch');
    });

    it('reads an array map and per-CPU values in batches', function () {
      const arr = track(BpfMap.create({ type: 'array', name: 'lbt_barr', keySize: 4, valueSize: 4, maxEntries: 300 }));
      arr.updateBatch([[u32(299), u32(7)]]);
      const all = arr.lookupBatch();
      expect(all).to.have.length(300);
      expect(all[299]?.[1]).to.deep.equal(u32(7));
      const pc = track(BpfMap.create({ type: 'percpu_hash', name: 'lbt_bpc', keySize: 4, valueSize: 8, maxEntries: 16 }));
      pc.updateBatch([[u32(1), u64(4)]]);
      const [entry] = pc.lookupBatch();
      expect(entry).to.not.equal(undefined);
      expect(pc.splitPerCpu(entry?.[1] ?? Buffer.alloc(0)).map((v) => Number(v.readBigUInt64LE()))).to.deep.equal(Array.from({ length: numPossibleCpus() }, () => 4));
    });

    it('falls back to per-key operations on an LPM trie, which has no batch ops', function () {
      const m = track(BpfMap.create({ type: 'lpm_trie', name: 'lbt_blpm', keySize: 8, valueSize: 4, maxEntries: 512, flags: BPF_F_NO_PREALLOC }));
      const entries: Array<[Buffer, Buffer]> = Array.from({ length: 300 }, (_, i) => [lpmKey(32, `10.0.${i >> 8}.${i & 255}`), u32(i)]);
      m.updateBatch(entries);
      expect(m.lookupBatch()).to.have.length(300);
      m.deleteBatch(entries.slice(0, 299).map(([k]) => k));
      expect(m.lookupBatch().map(([, v]) => v.readUInt32LE())).to.deep.equal([299]);
    });
  });

  describe('pinning', function () {
    let dir: string | undefined;
    beforeEach(function () {
      dir = makeBpffsDir();
    });
    afterEach(function () {
      removeDir(dir);
    });

    it('pins, reopens by path with the same identity, and unpins', function () {
      const pinPath = path.join(dir ?? '', 'cilium_policy_00164');
      const m = track(BpfMap.create({ type: 'hash', name: 'cilium_policy_00164', keySize: 4, valueSize: 4, maxEntries: 8 }));
      m.update(u32(5), u32(50));
      m.pin(pinPath);
      const again = track(BpfMap.openPinned(pinPath));
      expect(again.id).to.equal(m.id);
      expect(again.name).to.equal('cilium_policy_00164');
      expect({ type: again.type, keySize: again.keySize, valueSize: again.valueSize, maxEntries: again.maxEntries }).to.deep.equal({ type: 'hash', keySize: 4, valueSize: 4, maxEntries: 8 });
      expect(again.lookup(u32(5))).to.deep.equal(u32(50));
      BpfMap.unpin(pinPath);
      expect(existsSync(pinPath)).to.equal(false);
      expect(again.lookup(u32(5))).to.deep.equal(u32(50));
    });

    it('names the pin path when a pin is missing or cannot be made', function () {
      const missing = path.join(dir ?? '', 'absent');
      expectBpfError(() => BpfMap.openPinned(missing), 2, 'open pinned map', missing);
      expectBpfError(() => BpfMap.unpin(missing), 2, 'unpin', missing);
      const m = track(BpfMap.create({ type: 'array', name: 'lbt_pin', keySize: 4, valueSize: 4, maxEntries: 1 }));
      const noDir = path.join(dir ?? '', 'no', 'such', 'dir', 'pin');
      expectBpfError(() => m.pin(noDir), 2, 'pin map lbt_pin at', noDir);
      const twice = path.join(dir ?? '', 'twice');
      m.pin(twice);
      expectBpfError(() => m.pin(twice), 17, twice);
    });

    it('refuses to pin outside a bpffs', function () {
      const m = track(BpfMap.create({ type: 'array', name: 'lbt_nofs', keySize: 4, valueSize: 4, maxEntries: 1 }));
      const err = expectBpfError(() => m.pin('/tmp/cilium-ts-libbpf-not-bpffs'), 1, '/tmp/cilium-ts-libbpf-not-bpffs');
      expect(err.op).to.equal('pin map lbt_nofs at');
      expect(existsSync('/tmp/cilium-ts-libbpf-not-bpffs')).to.equal(false);
    });
  });

  it('takes over an fd and closes it once', function () {
    const m = BpfMap.create({ type: 'hash', name: 'lbt_fd', keySize: 4, valueSize: 4, maxEntries: 1 });
    const adopted = BpfMap.fromFd(m.fd, 'lbt_fd_adopted');
    expect(adopted.id).to.equal(m.id);
    expect(adopted.name).to.equal('lbt_fd');
    adopted.close();
    adopted.close();
    // libbpf rejects negative fds itself with EBADFD; the kernel would say EBADF.
    expect(() => BpfMap.fromFd(-1)).to.throw(BpfError, /^get info of map fd -1: .* \(errno (9|77)\)$/);
  });
});
