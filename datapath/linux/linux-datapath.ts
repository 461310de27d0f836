// The Datapath on a Linux kernel: one precompiled object (bpf/bpf_lxc.c) on every endpoint's
// host veth, with per-endpoint facts in maps pinned under a bpffs directory. Desired state is
// diffed against what the maps hold; only the difference is written.
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { newLogger, type Logger } from '../../controllers/runtime/log.js';
import { BpfError } from '../libbpf/errors.js';
import { BPF_F_NO_PREALLOC, BpfMap } from '../libbpf/map.js';
import { BpfObject } from '../libbpf/object.js';
import type { BpfProgram, TestRunResult } from '../libbpf/prog.js';
import { tcAttach, tcDetach, tcQuery, type TcDirection } from '../libbpf/tc.js';
import { decodeCtEntry, decodeCtTuple, type CtEntry, type CtTuple } from '../maps/ct.js';
import { DATAPATH_LAYOUTS } from '../maps/datapath-layouts.js';
import { decodeIpcacheKey, encodeIpcacheKey, encodeRemoteEndpointInfo } from '../maps/ipcache.js';
import { assertLayouts } from '../maps/layout.js';
import { decodeEndpointInfo, decodeEndpointKey, encodeEndpointInfo, encodeEndpointKey, type EndpointInfo } from '../maps/lxc.js';
import { decodeMetricsKey, sumPerCpu, type Counter } from '../maps/metrics.js';
import { POLICY_ENTRY_LAYOUT, POLICY_KEY_LAYOUT, POLICY_MAP_MAX_ENTRIES } from '../maps/policy.js';
import { policyMapContents } from '../maps/policy-entries.js';
import type { Datapath, DatapathEvent, Direction, Enforcement, EndpointSpec, IPCacheEntry, PolicyEntry, SyncResult } from '../types.js';
import { DatapathError } from './errors.js';
import { EventStream } from './event-stream.js';
import { syncMap, type MapContents } from './map-sync.js';
import { MapWriteCounter, type MapWriteCount } from './map-writes.js';
import { DEFAULT_PIN_DIR, endpointIdOfPolicyPin, LXC_OBJECT_PATH, policyMapName, preparePinDir } from './paths.js';

export interface LinuxDatapathOptions {
  /** bpffs directory the maps are pinned in (libbpf pin_root_path); default /sys/fs/bpf/tc/globals. */
  bpffsDir?: string;
  /** Compiled bpf_lxc object; default bpf/build/bpf_lxc.o. */
  objectPath?: string;
  logger?: Logger;
}

export type EndpointProgram = 'from-container' | 'to-container';

/** cilium_metrics summed over CPUs and drop sites. */
export interface MetricCount extends Counter {
  reason: number;
  direction: Direction | 'unknown';
}

const MAX_ENDPOINT_ID = 65535;
// The endpoint programs' tc filter: one per direction, at upstream's handle and priority.
const TC_HANDLE = 1;
const TC_PRIORITY = 1;
// A link that is gone, or never had a clsact qdisc, has nothing to detach.
const ENODEV = 19;
const IGNORABLE_DETACH_ERRNOS = new Set([2, 22, ENODEV]);

const MAP_NAMES = ['cilium_lxc', 'cilium_ipcache', 'cilium_policy_maps', 'cilium_ct4_global', 'cilium_ct_any4_global', 'cilium_metrics', 'cilium_events'] as const;
type MapName = (typeof MAP_NAMES)[number];
const CT_MAPS = ['cilium_ct4_global', 'cilium_ct_any4_global'] as const;

const PROGRAM_OF_HOOK: Record<TcDirection, EndpointProgram> = { ingress: 'from-container', egress: 'to-container' };
const HOOKS: readonly TcDirection[] = ['ingress', 'egress'];

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/** Runs `fn` now; its failure becomes a rejection, as callers of an async API expect. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

function checkEndpointId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_ENDPOINT_ID) {
    throw new DatapathError(`endpoint ${id}`, `id must be an integer 1..${MAX_ENDPOINT_ID}`);
  }
}

export class LinuxDatapath implements Datapath {
  readonly bpffsDir: string;
  private readonly maps: Record<MapName, BpfMap>;
  private readonly programs: Record<EndpointProgram, BpfProgram>;
  private readonly policyMaps = new Map<number, BpfMap>();
  private readonly writes = new MapWriteCounter();
  private readonly eventStream: EventStream;
  private closed = false;

  private constructor(
    bpffsDir: string,
    maps: Record<MapName, BpfMap>,
    programs: Record<EndpointProgram, BpfProgram>,
    private readonly log: Logger,
  ) {
    this.bpffsDir = bpffsDir;
    this.maps = maps;
    this.programs = programs;
    this.eventStream = new EventStream(maps.cilium_events, log);
  }

  /**
   * Loads the endpoint programs, reusing the maps pinned in `bpffsDir` (or pinning new ones), and
   * moves every endpoint found attached in cilium_lxc onto the new programs by atomic replace.
   */
  static open(opts: LinuxDatapathOptions = {}): Promise<LinuxDatapath> {
    return settle(() => {
      const bpffsDir = path.resolve(opts.bpffsDir ?? DEFAULT_PIN_DIR);
      const objectPath = opts.objectPath ?? LXC_OBJECT_PATH;
      const log = opts.logger ?? newLogger('datapath');
      if (!existsSync(objectPath)) throw new DatapathError(`BPF object ${objectPath}`, 'not found; build it with `make -C bpf`');
      preparePinDir(bpffsDir);

      const obj = BpfObject.open(objectPath, { pinRoot: bpffsDir });
      const opened: Array<{ close(): void }> = [];
      try {
        const btf = obj.btf();
        assertLayouts(btf, DATAPATH_LAYOUTS, objectPath);
        obj.load();
        const maps = {} as Record<MapName, BpfMap>;
        for (const name of MAP_NAMES) opened.push((maps[name] = obj.map(name)));
        const programs = {
          'from-container': obj.program('cil_from_container'),
          'to-container': obj.program('cil_to_container'),
        };
        opened.push(programs['from-container'], programs['to-container']);
        const dp = new LinuxDatapath(bpffsDir, maps, programs, log);
        dp.adoptAttachedEndpoints();
        return dp;
      } catch (err) {
        for (const o of opened) o.close();
        throw err;
      } finally {
        obj.close();
      }
    });
  }

  upsertEndpoint(ep: EndpointSpec): Promise<void> {
    return settle(() => {
      this.live();
      checkEndpointId(ep.id);
      if (!Number.isInteger(ep.ifindex) || ep.ifindex < 1) throw new DatapathError(`endpoint ${ep.id}`, `ifindex ${ep.ifindex} is not a valid interface index`);
      const key = encodeEndpointKey(ep.ipv4);
      const info: EndpointInfo = { ifindex: ep.ifindex, lxcId: ep.id, flags: 0, mac: ep.mac, nodeMac: ep.nodeMac, secId: ep.identity, parentIfindex: 0 };
      const value = encodeEndpointInfo(info);

      // The policy map is complete and reachable before the endpoint can be looked up by IP, and
      // the programs are attached last, so no packet meets a half-made endpoint.
      const policy = this.policyMap(ep.id, true);
      const idKey = u32(ep.id);
      if (this.maps.cilium_policy_maps.lookup(idKey)?.readUInt32LE(0) !== policy.id) {
        this.maps.cilium_policy_maps.update(idKey, u32(policy.fd));
        this.writes.update('cilium_policy_maps');
      }
      for (const [ip, old] of this.lxcEntriesOf(ep.id)) {
        if (ip === ep.ipv4) continue;
        this.maps.cilium_lxc.delete(encodeEndpointKey(ip));
        this.writes.delete('cilium_lxc');
        this.flushConntrack(ip);
        if (old.ifindex !== ep.ifindex) this.detach(old.ifindex);
      }
      const previous = this.maps.cilium_lxc.lookup(key);
      if (previous !== undefined && decodeEndpointInfo(previous).lxcId !== ep.id) {
        this.log.warn('endpoint address taken over from another endpoint', { endpoint: ep.id, ip: ep.ipv4, previousEndpoint: decodeEndpointInfo(previous).lxcId });
      }
      if (!previous?.equals(value)) {
        this.maps.cilium_lxc.update(key, value);
        this.writes.update('cilium_lxc');
      }
      this.attach(ep.ifindex);
    });
  }

  removeEndpoint(id: number): Promise<void> {
    return settle(() => {
      this.live();
      checkEndpointId(id);
      this.removeEndpointState(id);
    });
  }

  /**
   * Removes every endpoint (lxc entries, tc filters, policy maps) whose id is not in `keepIds`;
   * returns the removed ids. Used after a restart, once desired state is known.
   */
  pruneEndpoints(keepIds: Iterable<number>): Promise<number[]> {
    return settle(() => {
      this.live();
      const keep = new Set(keepIds);
      const known = new Set<number>();
      for (const [, info] of this.lxcEntries()) known.add(info.lxcId);
      for (const key of this.maps.cilium_policy_maps.keys()) known.add(key.readUInt32LE(0));
      for (const file of readdirSync(this.bpffsDir)) {
        const id = endpointIdOfPolicyPin(file);
        if (id !== undefined) known.add(id);
      }
      const removed = [...known].filter((id) => !keep.has(id)).sort((a, b) => a - b);
      for (const id of removed) this.removeEndpointState(id);
      if (removed.length > 0) this.log.info('pruned endpoints no desired state names', { endpoints: removed });
      return removed;
    });
  }

  syncIPCache(entries: readonly IPCacheEntry[]): Promise<SyncResult> {
    return settle(() => {
      this.live();
      const desired = new Map<string, { key: Buffer; value: Buffer }>();
      for (const e of entries) {
        const key = encodeIpcacheKey(e.prefix);
        const hex = key.toString('hex');
        const prev = desired.get(hex);
        const value = encodeRemoteEndpointInfo({ identity: e.identity, tunnelEndpoint: '0.0.0.0', encryptKey: 0, flags: 0 });
        if (prev !== undefined && !prev.value.equals(value)) {
          throw new DatapathError(`ipcache prefix ${decodeIpcacheKey(key)}`, `given twice with different identities (${prev.value.readUInt32LE(0)} and ${e.identity})`);
        }
        desired.set(hex, { key, value });
      }
      if (desired.size > this.maps.cilium_ipcache.maxEntries) {
        throw new DatapathError('cilium_ipcache', `${desired.size} prefixes exceed its ${this.maps.cilium_ipcache.maxEntries} entries`);
      }
      return syncMap(this.maps.cilium_ipcache, 'cilium_ipcache', desired, this.writes);
    });
  }

  syncPolicy(endpointId: number, entries: readonly PolicyEntry[], enforcement?: Enforcement): Promise<SyncResult> {
    return settle(() => {
      this.live();
      checkEndpointId(endpointId);
      const map = this.policyMap(endpointId, false);
      const desired: MapContents = policyMapContents(entries, enforcement);
      return syncMap(map, policyMapName(endpointId), desired, this.writes);
    });
  }

  events(signal?: AbortSignal): AsyncIterable<DatapathEvent> {
    this.live();
    if (this.eventStream.active) throw new DatapathError('cilium_events', 'already has a reader; reading a ring buffer consumes it');
    return this.eventStream.start(signal);
  }

  /** Decoded events already in the ring buffer, without waiting; not while events() runs. */
  drainEvents(): DatapathEvent[] {
    this.live();
    if (this.eventStream.active) throw new DatapathError('cilium_events', 'already has a reader; reading a ring buffer consumes it');
    return this.eventStream.drain();
  }

  /** Runs an endpoint program on a crafted Ethernet frame (BPF_PROG_TEST_RUN); durationNs is per run. */
  testRun(program: EndpointProgram, packet: Buffer, repeat = 1): TestRunResult {
    this.live();
    return this.programs[program].testRun({ data: packet, repeat });
  }

  /** Kernel id of an endpoint program as loaded by this process (what tc shows attached). */
  programId(program: EndpointProgram): number {
    return this.programs[program].id;
  }

  /** cilium_metrics by reason and direction, summed over CPUs and drop sites. */
  metrics(): MetricCount[] {
    this.live();
    const sums = new Map<string, MetricCount>();
    for (const key of this.maps.cilium_metrics.keys()) {
      const k = decodeMetricsKey(key);
      const id = `${k.reason}/${k.direction}`;
      const c = sumPerCpu(this.maps.cilium_metrics.lookupPerCpu(key));
      const sum = sums.get(id) ?? { reason: k.reason, direction: k.direction, count: 0, bytes: 0 };
      sum.count += c.count;
      sum.bytes += c.bytes;
      sums.set(id, sum);
    }
    return [...sums.values()];
  }

  /** Every conntrack entry, TCP and non-TCP. */
  conntrack(): Array<{ tuple: CtTuple; entry: CtEntry }> {
    this.live();
    const out: Array<{ tuple: CtTuple; entry: CtEntry }> = [];
    for (const name of CT_MAPS) {
      for (const [key, value] of this.maps[name].entries()) out.push({ tuple: decodeCtTuple(key), entry: decodeCtEntry(value) });
    }
    return out;
  }

  /** Writes this instance made, per map (policy maps by their pin name). */
  mapWrites(): Record<string, MapWriteCount> {
    return this.writes.snapshot();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.eventStream.stop();
    for (const m of this.policyMaps.values()) m.close();
    this.policyMaps.clear();
    for (const m of Object.values(this.maps)) m.close();
    for (const p of Object.values(this.programs)) p.close();
  }

  private live(): void {
    if (this.closed) throw new DatapathError(`datapath at ${this.bpffsDir}`, 'already closed');
  }

  private policyPinPath(id: number): string {
    return path.join(this.bpffsDir, policyMapName(id));
  }

  /** The endpoint's pinned policy map; `create` makes one (allowing everything) when missing. */
  private policyMap(id: number, create: boolean): BpfMap {
    const cached = this.policyMaps.get(id);
    if (cached !== undefined) return cached;
    const pin = this.policyPinPath(id);
    let map: BpfMap;
    if (existsSync(pin)) {
      map = BpfMap.openPinned(pin);
      if (map.type !== 'lpm_trie' || map.keySize !== POLICY_KEY_LAYOUT.size || map.valueSize !== POLICY_ENTRY_LAYOUT.size) {
        map.close();
        throw new DatapathError(`policy map ${pin}`, `is a ${map.type} with ${map.keySize}-byte keys and ${map.valueSize}-byte values, not this datapath's layout`);
      }
    } else if (create) {
      map = BpfMap.create({
        type: 'lpm_trie',
        name: policyMapName(id),
        keySize: POLICY_KEY_LAYOUT.size,
        valueSize: POLICY_ENTRY_LAYOUT.size,
        maxEntries: POLICY_MAP_MAX_ENTRIES,
        flags: BPF_F_NO_PREALLOC,
      });
      try {
        syncMap(map, policyMapName(id), policyMapContents([]), this.writes);
        map.pin(pin);
      } catch (err) {
        map.close();
        throw err;
      }
    } else {
      throw new DatapathError(`endpoint ${id}`, `has no policy map at ${pin}; upsertEndpoint must come first`);
    }
    this.policyMaps.set(id, map);
    return map;
  }

  private *lxcEntries(): Generator<[string, EndpointInfo]> {
    for (const [key, value] of this.maps.cilium_lxc.entries()) {
      const ip = decodeEndpointKey(key);
      if (ip !== undefined) yield [ip, decodeEndpointInfo(value)];
    }
  }

  private lxcEntriesOf(id: number): Array<[string, EndpointInfo]> {
    return [...this.lxcEntries()].filter(([, info]) => info.lxcId === id);
  }

  private attach(ifindex: number): void {
    for (const direction of HOOKS) {
      const prog = this.programs[PROGRAM_OF_HOOK[direction]];
      const filter = { ifindex, direction, handle: TC_HANDLE, priority: TC_PRIORITY };
      // Replacing the filter in place swaps programs atomically: no packet passes unchecked.
      if (tcQuery(filter) !== prog.id) tcAttach({ ...filter, progFd: prog.fd });
    }
  }

  private detach(ifindex: number): void {
    for (const direction of HOOKS) {
      try {
        tcDetach({ ifindex, direction, handle: TC_HANDLE, priority: TC_PRIORITY });
      } catch (err) {
        if (!(err instanceof BpfError && IGNORABLE_DETACH_ERRNOS.has(err.errno))) throw err;
      }
    }
  }

  private adoptAttachedEndpoints(): void {
    for (const [ip, info] of this.lxcEntries()) {
      try {
        if (HOOKS.some((direction) => tcQuery({ ifindex: info.ifindex, direction, handle: TC_HANDLE, priority: TC_PRIORITY }) !== undefined)) {
          this.attach(info.ifindex);
        }
      } catch (err) {
        // The link may be gone with its pod; pruneEndpoints removes what is left.
        this.log.warn('could not adopt endpoint programs', { endpoint: info.lxcId, ip, ifindex: info.ifindex, error: (err as Error).message });
      }
    }
  }

  private removeEndpointState(id: number): void {
    for (const [ip, info] of this.lxcEntriesOf(id)) {
      this.detach(info.ifindex);
      this.maps.cilium_lxc.delete(encodeEndpointKey(ip));
      this.writes.delete('cilium_lxc');
      this.flushConntrack(ip);
    }
    if (this.maps.cilium_policy_maps.delete(u32(id))) this.writes.delete('cilium_policy_maps');
    this.policyMaps.get(id)?.close();
    this.policyMaps.delete(id);
    const pin = this.policyPinPath(id);
    if (existsSync(pin)) unlinkSync(pin);
  }

  /** Drops the conntrack entries of an address that is leaving, so a reuse starts clean. */
  private flushConntrack(ip: string): void {
    for (const name of CT_MAPS) {
      const map = this.maps[name];
      const stale = [...map.keys()].filter((key) => {
        const t = decodeCtTuple(key);
        return t.saddr === ip || t.daddr === ip;
      });
      for (const key of stale) map.delete(key);
      this.writes.delete(name, stale.length);
    }
  }
}
