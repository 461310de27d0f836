// BPF maps by fd: create, open pinned, CRUD with raw Buffers, iteration and batch operations.
import { unlinkSync } from 'node:fs';
import path from 'node:path';
import koffi from 'koffi';
import { BpfError, check, EINVAL, ENOENT, ENOSPC, ENOTSUPP, EOPNOTSUPP, fromNodeError } from './errors.js';
import { closeFd } from './fd.js';
import { fn, MapBatchOpts, MapCreateOpts, MapInfo } from './native.js';

export type MapType = 'hash' | 'array' | 'lpm_trie' | 'lru_hash' | 'percpu_hash' | 'percpu_array' | 'ringbuf' | 'hash_of_maps' | 'array_of_maps' | 'prog_array';

// enum bpf_map_type in <linux/bpf.h>.
const MAP_TYPE_IDS: Record<MapType, number> = {
  hash: 1,
  array: 2,
  prog_array: 3,
  percpu_hash: 5,
  percpu_array: 6,
  lru_hash: 9,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  ringbuf: 27,
};
const MAP_TYPES_BY_ID = new Map(Object.entries(MAP_TYPE_IDS).map(([name, id]) => [id, name as MapType]));

const UPDATE_FLAGS = { any: 0, noexist: 1, exist: 2 } as const;

/** BPF_F_NO_PREALLOC: required by lpm_trie, optional for hash maps. */
export const BPF_F_NO_PREALLOC = 1;

const BATCH_CHUNK = 256;
const mapInfoSize = koffi.sizeof(MapInfo);
const batchOpts = { sz: koffi.sizeof(MapBatchOpts) };

export interface MapCreateOptions {
  type: MapType;
  name: string;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  flags?: number;
  innerMapFd?: number;
}

interface MapIdentity {
  name: string;
  type: MapType;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** map_flags given at creation (BPF_F_NO_PREALLOC, ...). */
  flags: number;
  id: number;
  btfId: number;
}

let possibleCpus: number | undefined;

/** CPUs a per-CPU map holds a value for (possible, not online, CPUs). */
export function numPossibleCpus(): number {
  possibleCpus ??= check(fn.numPossibleCpus(), 'count possible CPUs of', 'this host');
  return possibleCpus;
}

function isPerCpu(type: MapType): boolean {
  return type === 'percpu_hash' || type === 'percpu_array';
}

/** Kernel info for a map fd: type, sizes, name (at most 15 characters), ids. */
function mapInfoByFd(fd: number, what: string): MapIdentity {
  const buf = Buffer.alloc(mapInfoSize);
  check(fn.objGetInfoByFd(fd, buf, [buf.length]), 'get info of map', what);
  const info = koffi.decode(buf, MapInfo) as { type: number; id: number; key_size: number; value_size: number; max_entries: number; map_flags: number; name: string; btf_id: number };
  const type = MAP_TYPES_BY_ID.get(info.type);
  if (type === undefined) throw new BpfError(EINVAL, `map type ${info.type} not supported for`, what);
  return { name: info.name, type, keySize: info.key_size, valueSize: info.value_size, maxEntries: info.max_entries, flags: info.map_flags, id: info.id, btfId: info.btf_id };
}

export class BpfMap {
  readonly fd: number;
  readonly name: string;
  readonly type: MapType;
  readonly keySize: number;
  readonly valueSize: number;
  readonly maxEntries: number;
  readonly flags: number;
  readonly id: number;
  /** Kernel BTF describing key and value (0 when created without BTF); see Btf.fromKernelId. */
  readonly btfId: number;
  /** Bytes the kernel exchanges per value: per-CPU maps hold one 8-byte-aligned slot per possible CPU. */
  readonly rawValueSize: number;
  private closed = false;

  private constructor(fd: number, ident: MapIdentity) {
    this.fd = fd;
    this.name = ident.name;
    this.type = ident.type;
    this.keySize = ident.keySize;
    this.valueSize = ident.valueSize;
    this.maxEntries = ident.maxEntries;
    this.flags = ident.flags;
    this.id = ident.id;
    this.btfId = ident.btfId;
    this.rawValueSize = isPerCpu(ident.type) ? Math.ceil(ident.valueSize / 8) * 8 * numPossibleCpus() : ident.valueSize;
  }

  static create(o: MapCreateOptions): BpfMap {
    const what = `${o.name} (${o.type})`;
    const opts = { sz: koffi.sizeof(MapCreateOpts), map_flags: o.flags ?? 0, inner_map_fd: o.innerMapFd ?? 0 };
    const fd = check(fn.mapCreate(MAP_TYPE_IDS[o.type], o.name, o.keySize, o.valueSize, o.maxEntries, opts), 'create map', what);
    return BpfMap.adopt(fd, what, o.name);
  }

  static openPinned(pinPath: string): BpfMap {
    const fd = check(fn.objGet(pinPath), 'open pinned map', pinPath);
    return BpfMap.adopt(fd, pinPath, path.basename(pinPath));
  }

  /**
   * Takes ownership of `fd`. The kernel cuts names at 15 characters (cilium_policy_00164 comes
   * back as cilium_policy_0); `name` restores the full name when it extends a cut one.
   */
  static fromFd(fd: number, name?: string): BpfMap {
    return BpfMap.adopt(fd, name ?? `fd ${fd}`, name);
  }

  private static adopt(fd: number, what: string, fullName: string | undefined): BpfMap {
    try {
      const ident = mapInfoByFd(fd, what);
      if (fullName !== undefined && isTruncationOf(ident.name, fullName)) ident.name = fullName;
      return new BpfMap(fd, ident);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  /** For per-CPU maps the Buffer holds every CPU's slot (see lookupPerCpu). ENOENT -> undefined. */
  lookup(key: Buffer): Buffer | undefined {
    this.checkKey(key, 'lookup in');
    const value = Buffer.alloc(this.rawValueSize);
    const ret = fn.mapLookup(this.fd, key, value);
    if (ret === -ENOENT) return undefined;
    check(ret, 'lookup in map', this.describe(key));
    return value;
  }

  /** One valueSize Buffer per possible CPU; an absent key yields an empty array. */
  lookupPerCpu(key: Buffer): Buffer[] {
    if (!isPerCpu(this.type)) throw new BpfError(EINVAL, 'per-CPU lookup in non-per-CPU map', this.name);
    const raw = this.lookup(key);
    return raw === undefined ? [] : this.splitPerCpu(raw);
  }

  /** Per-CPU maps accept either one value (written to every CPU) or every CPU's slot. */
  update(key: Buffer, value: Buffer, flags: 'any' | 'noexist' | 'exist' = 'any'): void {
    this.checkKey(key, 'update');
    check(fn.mapUpdate(this.fd, key, this.toRawValue(value, 'update'), UPDATE_FLAGS[flags]), `update (${flags}) map`, this.describe(key));
  }

  delete(key: Buffer): boolean {
    this.checkKey(key, 'delete from');
    const ret = fn.mapDelete(this.fd, key);
    if (ret === -ENOENT) return false;
    check(ret, 'delete from map', this.describe(key));
    return true;
  }

  /** Makes the map read-only for user space: every later update or delete fails with EPERM. */
  freeze(): void {
    check(fn.mapFreeze(this.fd), 'freeze map', this.name);
  }

  *keys(): IterableIterator<Buffer> {
    let prev: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(this.keySize);
      const ret = fn.mapGetNextKey(this.fd, prev, next);
      if (ret === -ENOENT) return;
      check(ret, 'iterate keys of map', this.name);
      yield next;
      prev = next;
    }
  }

  /** Entries whose key vanishes between listing and lookup are skipped. */
  *entries(): IterableIterator<[Buffer, Buffer]> {
    for (const key of this.keys()) {
      const value = this.lookup(key);
      if (value !== undefined) yield [key, value];
    }
  }

  lookupBatch(): Array<[Buffer, Buffer]> {
    const out: Array<[Buffer, Buffer]> = [];
    // Batch tokens are a u32 bucket for hashes and a key for arrays.
    let inBatch: Buffer | null = null;
    let outBatch = Buffer.alloc(Math.max(this.keySize, 8));
    let chunk = BATCH_CHUNK;
    for (;;) {
      const keys = Buffer.alloc(chunk * this.keySize);
      const values = Buffer.alloc(chunk * this.rawValueSize);
      const count: [number] = [chunk];
      const ret = fn.mapLookupBatch(this.fd, inBatch, outBatch, keys, values, count, batchOpts);
      if (ret < 0 && isUnsupported(ret) && out.length === 0) return [...this.entries()];
      // A hash bucket larger than the chunk does not fit; retry it with room to spare.
      if (ret === -ENOSPC && chunk < this.maxEntries) {
        chunk *= 2;
        continue;
      }
      if (ret < 0 && ret !== -ENOENT) check(ret, 'batch lookup in map', this.name);
      for (let i = 0; i < count[0]; i++) {
        out.push([
          Buffer.from(keys.subarray(i * this.keySize, (i + 1) * this.keySize)),
          Buffer.from(values.subarray(i * this.rawValueSize, (i + 1) * this.rawValueSize)),
        ]);
      }
      if (ret === -ENOENT) return out;
      inBatch = outBatch;
      outBatch = Buffer.alloc(outBatch.length);
    }
  }

  updateBatch(entries: Array<[Buffer, Buffer]>): void {
    for (let start = 0; start < entries.length; start += BATCH_CHUNK) {
      const part = entries.slice(start, start + BATCH_CHUNK);
      for (const [key] of part) this.checkKey(key, 'batch update');
      const keys = Buffer.concat(part.map(([key]) => key));
      const values = Buffer.concat(part.map(([, value]) => this.toRawValue(value, 'batch update')));
      const ret = fn.mapUpdateBatch(this.fd, keys, values, [part.length], batchOpts);
      if (isUnsupported(ret)) {
        for (const [key, value] of part) this.update(key, value);
      } else {
        check(ret, 'batch update map', this.name);
      }
    }
  }

  /** Keys must exist: a missing key fails with ENOENT like a single delete would report it. */
  deleteBatch(keys: Buffer[]): void {
    for (let start = 0; start < keys.length; start += BATCH_CHUNK) {
      const part = keys.slice(start, start + BATCH_CHUNK);
      for (const key of part) this.checkKey(key, 'batch delete from');
      const ret = fn.mapDeleteBatch(this.fd, Buffer.concat(part), [part.length], batchOpts);
      if (isUnsupported(ret)) {
        for (const key of part) {
          if (!this.delete(key)) throw new BpfError(ENOENT, 'batch delete from map', this.describe(key));
        }
      } else {
        check(ret, 'batch delete from map', this.name);
      }
    }
  }

  pin(pinPath: string): void {
    check(fn.objPin(this.fd, pinPath), `pin map ${this.name} at`, pinPath);
  }

  /** Removes a pin (map or program); the object lives on while other fds or pins hold it. */
  static unpin(pinPath: string): void {
    try {
      // bpffs pins are plain directory entries; unlink is how they are removed.
      unlinkSync(pinPath);
    } catch (err) {
      throw fromNodeError(err, 'unpin', pinPath);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }

  splitPerCpu(raw: Buffer): Buffer[] {
    const stride = this.rawValueSize / numPossibleCpus();
    return Array.from({ length: numPossibleCpus() }, (_, cpu) => Buffer.from(raw.subarray(cpu * stride, cpu * stride + this.valueSize)));
  }

  private toRawValue(value: Buffer, op: string): Buffer {
    if (value.length === this.rawValueSize) return value;
    if (isPerCpu(this.type) && value.length === this.valueSize) {
      const stride = this.rawValueSize / numPossibleCpus();
      const raw = Buffer.alloc(this.rawValueSize);
      for (let cpu = 0; cpu < numPossibleCpus(); cpu++) value.copy(raw, cpu * stride);
      return raw;
    }
    throw new BpfError(EINVAL, `${op} map`, this.name, `value is ${value.length} bytes, map takes ${this.valueSize}${isPerCpu(this.type) ? ` or ${this.rawValueSize}` : ''}`);
  }

  private checkKey(key: Buffer, op: string): void {
    if (key.length !== this.keySize) throw new BpfError(EINVAL, `${op} map`, this.name, `key is ${key.length} bytes, map takes ${this.keySize}`);
  }

  private describe(key: Buffer): string {
    return `${this.name} key ${key.toString('hex')}`;
  }
}

/** The kernel keeps BPF_OBJ_NAME_LEN - 1 = 15 characters of a map or program name. */
export function isTruncationOf(kernelName: string, fullName: string): boolean {
  return kernelName.length === 15 && fullName.startsWith(kernelName);
}

function isUnsupported(ret: number): boolean {
  return ret === -ENOTSUPP || ret === -EOPNOTSUPP;
}
