// The Datapath on a Linux kernel: one precompiled object (bpf/bpf_lxc.c) on every endpoint's
// host veth, with per-endpoint facts in maps pinned under a bpffs directory. Desired state is
// diffed against a shadow of what the maps hold; only the difference is written.
import { existsSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { u32 } from '../libbpf/bytes.js';
import { BpfError, EINVAL, ENODEV, ENOENT } from '../libbpf/errors.js';
import { setLibbpfLogger } from '../libbpf/log.js';
import { BPF_F_NO_PREALLOC, BpfMap, type MapCreateOptions } from '../libbpf/map.js';
import { BpfObject } from '../libbpf/object.js';
import type { BpfProgram, TestRunResult } from '../libbpf/prog.js';
import { tcDetach, tcQuery, type TcAttachPoint } from '../libbpf/tc.js';
import type { DatapathLogger } from '../log.js';
import { CT_TUPLE_LAYOUT, decodeCtEntry, decodeCtTuple, type CtEntry, type CtTuple } from '../maps/ct.js';
import { DATAPATH_LAYOUTS } from '../maps/datapath-layouts.js';
import { ipv4Bytes, ipv4String } from '../maps/ipv4.js';
import { assertLayouts, describeFailure } from '../maps/layout.js';
import { decodeEndpointInfo, decodeEndpointKey, encodeEndpointInfo, encodeEndpointKey, type EndpointInfo } from '../maps/lxc.js';
import { decodeMetricsKey, sumPerCpu } from '../maps/metrics.js';
import { POLICY_ENTRY_LAYOUT, POLICY_KEY_LAYOUT, POLICY_MAP_MAX_ENTRIES } from '../maps/policy.js';
import { policyMapContents } from '../maps/policy-entries.js';
import {
  IPCACHE_SOURCE_PRECEDENCE,
  type Datapath,
  type DatapathEvent,
  type Enforcement,
  type EndpointPolicyStatus,
  type EndpointSpec,
  type IPCacheEntry,
  type IPCacheSource,
  type MetricCount,
  type NodeNetworkSpec,
  type NodeNetworkStatus,
  type PolicyEntry,
  type RemoteNodeRoute,
  type SyncResult,
} from '../types.js';
import { checkEndpointId, checkEndpointSpec, ipcacheContents, mergeIpcacheSources } from './desired-state.js';
import { DatapathError } from './errors.js';
import { EventStream } from './event-stream.js';
import { ipcacheWriteOrder } from './ipcache-writes.js';
import { ShadowedMap, type MapContents } from './map-sync.js';
import { MapWriteCounter, type MapWriteCount } from './map-writes.js';
import { NodeDatapath } from './node-datapath.js';
import { DEFAULT_PIN_DIR, endpointIdOfPolicyPin, LXC_OBJECT_PATH, policyMapName, preparePinDir } from './paths.js';
import { compactPolicyOrder, safePolicyOrder } from './policy-writes.js';
import { putProgram, TC_HANDLE, TC_PRIORITY } from './tc-program.js';

export interface LinuxDatapathOptions {
  /** bpffs directory the maps are pinned in (libbpf pin_root_path); default /sys/fs/bpf/tc/globals. */
  bpffsDir?: string;
  /** Compiled bpf_lxc object; default bpf/build/bpf_lxc.o. */
  objectPath?: string;
  /** Where the datapath logs; libbpf's own messages go there too (one hook per process). */
  logger: DatapathLogger;
}

export type EndpointProgram = 'from-container' | 'to-container';

// A link that is gone, or never had a clsact qdisc, has nothing to detach.
const IGNORABLE_DETACH_ERRNOS = new Set([ENOENT, EINVAL, ENODEV]);

const MAP_NAMES = ['cilium_lxc', 'cilium_ipcache_v2', 'cilium_policy_maps', 'cilium_policy_revision', 'cilium_ct4_global', 'cilium_ct_any4_global', 'cilium_metrics', 'cilium_events', 'cilium_node_config'] as const;
type MapName = (typeof MAP_NAMES)[number];
const CT_MAPS = ['cilium_ct4_global', 'cilium_ct_any4_global'] as const;
const CT_SADDR_OFFSET = CT_TUPLE_LAYOUT.members.saddr.offset;
const CT_DADDR_OFFSET = CT_TUPLE_LAYOUT.members.daddr.offset;

// tc ingress of the host veth sees what the pod sends, tc egress what it receives.
const PROGRAM_OF_HOOK: Record<TcAttachPoint, EndpointProgram> = { 'tc-ingress': 'from-container', 'tc-egress': 'to-container' };
const HOOKS: readonly TcAttachPoint[] = ['tc-ingress', 'tc-egress'];
const REVISION_KEY = u32(0);

// struct __sk_buff (UAPI) up to and including ifindex, the only field a test run sets: the
// kernel runs the program as if the packet were on that device.
const SKB_CTX_SIZE = 44;
const SKB_IFINDEX_OFFSET = 40;
// The IPv4 source and destination of an Ethernet frame.
const ETH_HLEN = 14;
const ETH_P_IP = 0x0800;
const FRAME_SADDR_OFFSET = ETH_HLEN + 12;
const FRAME_DADDR_OFFSET = ETH_HLEN + 16;

/** Runs `fn` now; its failure becomes a rejection, as callers of an async API expect. */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

// What every endpoint policy map is created with, and what a pinned one must match.
const POLICY_MAP_SPEC = {
  type: 'lpm_trie',
  keySize: POLICY_KEY_LAYOUT.size,
  valueSize: POLICY_ENTRY_LAYOUT.size,
  maxEntries: POLICY_MAP_MAX_ENTRIES,
  flags: BPF_F_NO_PREALLOC,
} as const satisfies Omit<MapCreateOptions, 'name'>;

/** Why a pinned map cannot serve as an endpoint policy map; empty when it can. */
function policyMapMismatches(map: BpfMap): string[] {
  return (Object.keys(POLICY_MAP_SPEC) as Array<keyof typeof POLICY_MAP_SPEC>).filter((k) => map[k] !== POLICY_MAP_SPEC[k]).map((k) => `${k} is ${map[k]}, expected ${POLICY_MAP_SPEC[k]}`);
}

export class LinuxDatapath implements Datapath {
  readonly bpffsDir: string;
  private readonly maps: Record<MapName, BpfMap>;
  private readonly programs: Record<EndpointProgram, BpfProgram>;
  private readonly writes = new MapWriteCounter();
  private readonly lxc: ShadowedMap;
  private readonly ipcache: ShadowedMap;
  private readonly policyMaps = new Map<number, ShadowedMap>();
  // cilium_policy_maps as this process last wrote or read it: endpoint id -> policy map id. An
  // endpoint absent here has no policy the programs can reach and drops everything (203).
  private readonly policyAttached = new Map<number, number>();
  // The policy each open endpoint enforces, as its last successful syncPolicy gave it.
  private readonly realized = new Map<number, { entries: readonly PolicyEntry[]; enforcement: Enforcement }>();
  // Each ipcache source's rows, merged into cilium_ipcache_v2 by IPCACHE_SOURCE_PRECEDENCE.
  private ipcacheSources = new Map<IPCacheSource, MapContents>();
  // The rows a previous process left, kept below every source until each source has synced once
  // here: a restart must not drop one loop's rows because another loop synced first.
  private restoredIpcache: MapContents | undefined;
  private readonly eventStream: EventStream;
  private readonly node: NodeDatapath;
  private closed = false;
  // Program attachments this instance made: like map writes, they make a new policy revision.
  private programChanges = 0;

  private constructor(
    bpffsDir: string,
    maps: Record<MapName, BpfMap>,
    programs: Record<EndpointProgram, BpfProgram>,
    private readonly log: DatapathLogger,
  ) {
    this.bpffsDir = bpffsDir;
    this.maps = maps;
    this.programs = programs;
    this.lxc = new ShadowedMap(maps.cilium_lxc, 'cilium_lxc', this.writes);
    this.ipcache = new ShadowedMap(maps.cilium_ipcache_v2, 'cilium_ipcache_v2', this.writes, ipcacheWriteOrder);
    this.restoredIpcache = this.ipcache.contents.size > 0 ? new Map(this.ipcache.contents) : undefined;
    this.readPolicyAttachments(this.policyAttached);
    this.eventStream = new EventStream(maps.cilium_events, log);
    this.node = new NodeDatapath(bpffsDir, maps.cilium_node_config, this.writes, log);
  }

  /**
   * Loads the endpoint programs, reusing the maps pinned in `bpffsDir` (or pinning new ones), reads
   * the maps this datapath writes once, and moves every endpoint found attached in cilium_lxc onto
   * the new programs by atomic replace.
   */
  static open(opts: LinuxDatapathOptions): Promise<LinuxDatapath> {
    return settle(() => {
      const bpffsDir = path.resolve(opts.bpffsDir ?? DEFAULT_PIN_DIR);
      const objectPath = opts.objectPath ?? LXC_OBJECT_PATH;
      const log = opts.logger;
      setLibbpfLogger(log);
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

  /**
   * Creates the endpoint's (empty) policy map, its cilium_lxc entry and attaches the programs. The
   * policy map becomes reachable only with the first successful syncPolicy: until then every
   * packet of the endpoint drops with 203, as upstream before an endpoint's first regeneration.
   * A veth or address the endpoint leaves keeps its programs and so drops what it carries.
   */
  upsertEndpoint(ep: EndpointSpec): Promise<void> {
    return settle(() => {
      this.live();
      checkEndpointSpec(ep);
      this.withRevision('endpoint upsert', () => this.openEndpoints(), () => this.freeingAddresses(`endpoint ${ep.id} upsert`, (leaving) => this.upsertEndpointState(ep, leaving)));
    });
  }

  /** `leaving` gets the addresses whose conntrack must go: the endpoint's old ones and one it takes over. */
  private upsertEndpointState(ep: EndpointSpec, leaving: string[]): void {
    const key = encodeEndpointKey(ep.ipv4);
    const info: EndpointInfo = { ifindex: ep.ifindex, lxcId: ep.id, flags: 0, mac: ep.mac, nodeMac: ep.nodeMac, secId: ep.identity, parentIfindex: 0 };
    const value = encodeEndpointInfo(info);

    const policy = this.policyMap(ep.id, true);
    this.closeStalePolicy(ep.id, policy);
    for (const [ip] of this.lxcEntriesOf(ep.id)) {
      if (ip === ep.ipv4) continue;
      this.lxc.remove(encodeEndpointKey(ip));
      leaving.push(ip);
    }
    const previous = this.lxc.contents.get(key.toString('hex'));
    const previousOwner = previous === undefined ? undefined : decodeEndpointInfo(previous.value).lxcId;
    this.lxc.set(key, value);
    if (previousOwner !== undefined && previousOwner !== ep.id) {
      // The old owner's flows must not pass as established for the new owner. Flushed after
      // the entry moved, so the old owner's veth cannot open new ones in between.
      this.log.warn('endpoint address taken over from another endpoint', { endpoint: ep.id, ip: ep.ipv4, previousEndpoint: previousOwner });
      leaving.push(ep.ipv4);
    }
    // The programs go on last, so no packet meets a half-made endpoint.
    try {
      this.attach(ep.ifindex, `endpoint ${ep.id} link ${ep.ifname} (ifindex ${ep.ifindex})`);
    } catch (err) {
      // The lxc entry must not outlive programs that are not there to enforce it.
      try {
        this.rollBackLxc(key, previous);
      } catch (lxcErr) {
        throw new DatapathError(`endpoint ${ep.id}`, `${describeFailure(err)}; its cilium_lxc entry could not be rolled back either: ${describeFailure(lxcErr)}`, { cause: new AggregateError([err, lxcErr], `endpoint ${ep.id}: attach failed`) });
      }
      throw err;
    }
  }

  removeEndpoint(id: number): Promise<void> {
    return settle(() => {
      this.live();
      checkEndpointId(id);
      this.withRevision('endpoint removal', () => this.openEndpoints(), () => this.freeingAddresses(`endpoint ${id} removal`, (leaving) => this.removeEndpointState(id, leaving)));
    });
  }

  /**
   * Removes every endpoint (lxc entries, policy maps, conntrack) whose id is not in `keepIds`;
   * returns the removed ids. Used after a restart, once desired state is known. The programs stay
   * on the veths, which from then on drop what they carry.
   */
  pruneEndpoints(keepIds: Iterable<number>): Promise<number[]> {
    return settle(() => {
      this.live();
      const keep = new Set(keepIds);
      const known = new Set<number>(this.policyAttached.keys());
      for (const [, info] of this.lxcEntries()) known.add(info.lxcId);
      for (const file of readdirSync(this.bpffsDir)) {
        const id = endpointIdOfPolicyPin(file);
        if (id !== undefined) known.add(id);
      }
      const removed = [...known].filter((id) => !keep.has(id)).sort((a, b) => a - b);
      this.withRevision('endpoint prune', () => this.openEndpoints(), () =>
        this.freeingAddresses('endpoint prune', (leaving) => {
          for (const id of removed) this.removeEndpointState(id, leaving);
        }),
      );
      if (removed.length > 0) this.log.info('pruned endpoints no desired state names', { endpoints: removed });
      return removed;
    });
  }

  syncIPCache(source: IPCacheSource, entries: readonly IPCacheEntry[]): Promise<SyncResult> {
    return settle(() => {
      this.live();
      if (!IPCACHE_SOURCE_PRECEDENCE.includes(source)) throw new DatapathError(`ipcache source ${String(source)}`, `is not one of ${IPCACHE_SOURCE_PRECEDENCE.join(', ')}`);
      // Nothing is kept until the merge is known to fit: a refused sync changes no state.
      const sources = new Map(this.ipcacheSources).set(source, ipcacheContents(entries, this.ipcache.maxEntries));
      const restored = IPCACHE_SOURCE_PRECEDENCE.every((s) => sources.has(s)) ? undefined : this.restoredIpcache;
      const merged = mergeIpcacheSources(sources, restored, this.ipcache.maxEntries);
      this.ipcacheSources = sources;
      this.restoredIpcache = restored;
      return this.withRevision('ipcache sync', () => this.openEndpoints(), () => this.ipcache.sync(merged));
    });
  }

  /**
   * Runs `change`, then tells the programs that verdicts may have changed when it wrote a map or
   * attached programs, or failed (it may have written part of its change): every conntrack entry
   * allowed at an older revision is judged by policy again at its next packet. A change that
   * wrote nothing leaves every cached verdict valid. When the revision cannot be published, the
   * endpoints whose verdicts the change may have altered (`affected`) are failed closed (203),
   * since their stale allows would otherwise hold.
   */
  private withRevision<T>(what: string, affected: () => Iterable<number>, change: () => T): T {
    const before = this.writes.total() + this.programChanges;
    let result: T;
    try {
      result = change();
    } catch (err) {
      this.publishRevisionOrClose(what, affected, err);
      throw err;
    }
    if (this.writes.total() + this.programChanges !== before) this.publishRevisionOrClose(what, affected);
    return result;
  }

  /** Publishes a new revision; when that fails, closes `affected` and throws with `changeErr` kept. */
  private publishRevisionOrClose(what: string, affected: () => Iterable<number>, changeErr?: unknown): void {
    try {
      const map = this.maps.cilium_policy_revision;
      const current = map.lookup(REVISION_KEY)?.readUInt32LE(0) ?? 0;
      map.update(REVISION_KEY, u32((current + 1) >>> 0));
      this.writes.update('cilium_policy_revision');
    } catch (revErr) {
      const ids = [...affected()];
      const errors = changeErr === undefined ? [revErr] : [changeErr, revErr];
      const notClosed: string[] = [];
      for (const id of ids) {
        try {
          this.failClosed(id);
        } catch (closeErr) {
          notClosed.push(`${id} (${describeFailure(closeErr)})`);
          errors.push(closeErr);
        }
      }
      // Live flows pass on the verdict (and endpoint) their conntrack entry cached while the
      // revision stands still: without their entries their next packets meet the closed policy.
      try {
        this.flushConntrack(ids.flatMap((id) => this.lxcEntriesOf(id).map(([ip]) => ip)));
      } catch (flushErr) {
        notClosed.push(`conntrack of ${ids.join(', ')} (${describeFailure(flushErr)})`);
        errors.push(flushErr);
      }
      const closed = notClosed.length === 0 ? `endpoint(s) ${ids.join(', ') || 'none'} drop all traffic (203) until a sync succeeds` : `endpoint(s) NOT closed: ${notClosed.join(', ')}`;
      const failed = changeErr === undefined ? '' : `; the ${what} itself failed: ${describeFailure(changeErr)}`;
      throw new DatapathError('cilium_policy_revision', `could not be bumped after ${what}, cached verdicts may be stale; ${closed}: ${describeFailure(revErr)}${failed}`, { cause: new AggregateError(errors, `${what}: policy revision not published`) });
    }
  }

  /** Endpoints whose programs can reach a policy: those a node-wide change may alter verdicts of. */
  private openEndpoints(): number[] {
    return [...this.policyAttached.keys()];
  }

  /** What the endpoint enforces now, as its last successful syncPolicy left it. */
  endpointPolicy(endpointId: number): EndpointPolicyStatus {
    this.live();
    checkEndpointId(endpointId);
    if (!this.policyMaps.has(endpointId) && !existsSync(this.policyPinPath(endpointId))) throw new DatapathError(`endpoint ${endpointId}`, 'is not known to this datapath');
    const realized = this.realized.get(endpointId);
    const open = this.policyAttached.has(endpointId);
    return open && realized !== undefined ? { open, realized } : { open };
  }

  /**
   * Writes the endpoint's policy and makes it reachable. Fails closed: when the policy cannot be
   * computed or written, the endpoint's policy map is taken out of cilium_policy_maps (every
   * packet drops with 203) before the error is thrown; the next successful sync restores it.
   */
  syncPolicy(endpointId: number, entries: readonly PolicyEntry[], enforcement: Enforcement): Promise<SyncResult> {
    return settle(() => {
      this.live();
      checkEndpointId(endpointId);
      this.realized.delete(endpointId);
      return this.withRevision(`policy sync of endpoint ${endpointId}`, () => [endpointId], () => {
        let map: ShadowedMap;
        try {
          map = this.policyMap(endpointId, false);
        } catch (err) {
          throw this.closedAfter(endpointId, 'policy map unavailable', err);
        }
        let desired: MapContents;
        try {
          desired = policyMapContents(entries, enforcement);
        } catch (err) {
          throw this.closedAfter(endpointId, 'policy cannot be computed', err);
        }
        const result = this.writePolicy(endpointId, map, desired, true);
        this.realized.set(endpointId, { entries: [...entries], enforcement: { ...enforcement } });
        return result;
      });
    });
  }

  /**
   * Moves the policy map to `desired` in an order no more permissive than old and new together,
   * then (`open`) makes it reachable. Fails closed like syncPolicy.
   */
  private writePolicy(endpointId: number, map: ShadowedMap, desired: MapContents, open: boolean): SyncResult {
    try {
      const diff = map.diff(desired);
      const plan = safePolicyOrder(diff, map.contents);
      let result: SyncResult;
      if (plan.peak <= map.maxEntries) {
        result = map.write(plan.writes, desired);
      } else {
        // No order keeps both policies' bounds within the map's capacity: close the endpoint for
        // the moment of the rewrite instead.
        this.failClosed(endpointId);
        result = map.write(compactPolicyOrder(diff), desired);
      }
      if (open) this.attachPolicy(endpointId, map);
      return result;
    } catch (err) {
      throw this.closedAfter(endpointId, 'policy write failed', err);
    }
  }

  /** Fails the endpoint closed after `err`; the error to throw keeps `err` and any failure to close. */
  private closedAfter(endpointId: number, what: string, err: unknown): DatapathError {
    const subject = `endpoint ${endpointId}`;
    try {
      this.failClosed(endpointId);
    } catch (closeErr) {
      return new DatapathError(subject, `${what} and the endpoint could not be closed either (${describeFailure(closeErr)}): ${describeFailure(err)}`, { cause: new AggregateError([err, closeErr], `${subject}: ${what}`) });
    }
    return new DatapathError(subject, `${what}, endpoint drops all traffic (203) until a sync succeeds: ${describeFailure(err)}`, { cause: err });
  }

  /**
   * Reads every map this datapath writes back from the kernel and repairs what differs from what
   * it means them to hold (failed writes, entries changed behind its back); returns the repairs
   * per map. Policy maps are rewritten as syncPolicy writes them, failing closed alone. Every map
   * is tried; failures are thrown together at the end.
   */
  resync(): Promise<Record<string, SyncResult>> {
    return settle(() => {
      this.live();
      return this.withRevision('datapath resync', () => this.openEndpoints(), () => this.repairMaps());
    });
  }

  /** resync's repairs; every map is tried and the failures thrown together. */
  private repairMaps(): Record<string, SyncResult> {
    const out: Record<string, SyncResult> = {};
    const failed: Array<{ name: string; err: unknown }> = [];
    const attempt = (name: string, fn: () => SyncResult): void => {
      try {
        out[name] = fn();
      } catch (err) {
        failed.push({ name, err });
      }
    };
    attempt('cilium_lxc', () => this.lxc.resync());
    attempt('cilium_ipcache_v2', () => this.ipcache.resync());
    for (const [id, map] of this.policyMaps) {
      attempt(map.name, () => {
        map.reload();
        return this.writePolicy(id, map, map.intended, this.policyAttached.has(id));
      });
    }
    attempt('cilium_policy_maps', () => this.resyncPolicyAttachments());
    if (failed.length > 0) {
      throw new DatapathError(
        'datapath resync',
        `${failed.length} map(s) could not be repaired, the rest were: ${failed.map((f) => `${f.name}: ${describeFailure(f.err)}`).join('; ')}`,
        { cause: new AggregateError(failed.map((f) => f.err), 'datapath resync') },
      );
    }
    return out;
  }

  /**
   * The node's networking in this process's network namespace (see Datapath.setupNode); the
   * programs it attaches come from bpf_host.o and bpf_overlay.o on this datapath's pinned maps.
   */
  setupNode(spec: NodeNetworkSpec): Promise<NodeNetworkStatus> {
    return settle(() => this.live()).then(() => this.node.setup(spec));
  }

  syncNodeRoutes(routes: readonly RemoteNodeRoute[]): Promise<SyncResult> {
    return settle(() => this.live()).then(() => this.node.syncRoutes(routes));
  }

  events(signal?: AbortSignal, onLost?: (count: number) => void, maxQueued?: number): AsyncIterable<DatapathEvent> {
    this.live();
    return this.eventStream.subscribe({ signal, onLost, maxQueued });
  }

  /** Decoded events already in the ring buffer, without waiting; not while events() readers run (or just ended). */
  drainEvents(): DatapathEvent[] {
    this.live();
    if (this.eventStream.active) throw new DatapathError('cilium_events', 'is being read; a drain would race its readers');
    return this.eventStream.drain();
  }

  /**
   * Runs an endpoint program on a crafted Ethernet frame (BPF_PROG_TEST_RUN); durationNs is per
   * run. The program sees the packet on interface `ifindex`; by default on the veth of the
   * endpoint the frame belongs to (its source for from-container, its destination for
   * to-container), as real traffic would be.
   */
  testRun(program: EndpointProgram, packet: Buffer, repeat = 1, ifindex?: number): TestRunResult {
    this.live();
    const dev = ifindex ?? this.endpointIfindexOf(program, packet);
    const ctx = dev === undefined ? undefined : Buffer.alloc(SKB_CTX_SIZE);
    ctx?.writeUInt32LE(dev!, SKB_IFINDEX_OFFSET);
    return this.programs[program].testRun({ data: packet, repeat, ctx });
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
      for (const [key, value] of this.maps[name].lookupBatch()) out.push({ tuple: decodeCtTuple(key), entry: decodeCtEntry(value) });
    }
    return out;
  }

  /** Writes this instance made, per map (policy maps by their pin name), failed syncs included. */
  mapWrites(): Record<string, MapWriteCount> {
    return this.writes.snapshot();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.eventStream.stop();
    this.node.close();
    for (const m of this.policyMaps.values()) m.map.close();
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

  /** The endpoint's pinned policy map; `create` makes an empty one when missing. */
  private policyMap(id: number, create: boolean): ShadowedMap {
    const cached = this.policyMaps.get(id);
    if (cached !== undefined) return cached;
    const pin = this.policyPinPath(id);
    let map: BpfMap;
    if (existsSync(pin)) {
      map = BpfMap.openPinned(pin);
      const mismatches = policyMapMismatches(map);
      if (mismatches.length > 0) {
        map.close();
        throw new DatapathError(`policy map ${pin}`, `is not this datapath's policy map: ${mismatches.join(', ')}`);
      }
    } else if (create) {
      map = BpfMap.create({ ...POLICY_MAP_SPEC, name: policyMapName(id) });
      try {
        map.pin(pin);
      } catch (err) {
        map.close();
        throw err;
      }
    } else {
      throw new DatapathError(`endpoint ${id}`, `has no policy map at ${pin}; upsertEndpoint must come first`);
    }
    let shadowed: ShadowedMap;
    try {
      shadowed = new ShadowedMap(map, policyMapName(id), this.writes);
    } catch (err) {
      // The first read failed: nothing holds the map, so its fd goes here.
      map.close();
      throw err;
    }
    this.policyMaps.set(id, shadowed);
    return shadowed;
  }

  /** Makes the endpoint's policy map the one the programs use. */
  private attachPolicy(id: number, map: ShadowedMap): void {
    if (this.policyAttached.get(id) === map.map.id) return;
    this.maps.cilium_policy_maps.update(u32(id), u32(map.map.fd));
    this.policyAttached.set(id, map.map.id);
    this.writes.update('cilium_policy_maps');
  }

  /**
   * After a restart whose policy pin was lost, cilium_policy_maps may still point at an older map
   * that nothing here can update; the endpoint stays closed until its next successful syncPolicy.
   */
  private closeStalePolicy(id: number, map: ShadowedMap): void {
    const attached = this.maps.cilium_policy_maps.lookup(u32(id));
    if (attached === undefined || attached.readUInt32LE(0) === map.map.id) return;
    this.log.warn('endpoint policy map differs from the one its programs use; closing it until a policy sync', { endpoint: id, attachedMapId: attached.readUInt32LE(0), mapId: map.map.id });
    this.failClosed(id);
  }

  /** Puts back the cilium_lxc entry an upsert replaced (or removes the one it created). */
  private rollBackLxc(key: Buffer, previous: { value: Buffer } | undefined): void {
    if (previous === undefined) this.lxc.remove(key);
    else this.lxc.set(key, previous.value);
  }

  /** Takes the endpoint's policy out of the programs' reach: its packets drop with 203. */
  private failClosed(id: number): void {
    this.policyAttached.delete(id);
    if (this.maps.cilium_policy_maps.delete(u32(id))) this.writes.delete('cilium_policy_maps');
  }

  private readPolicyAttachments(into: Map<number, number>): void {
    for (const [key, value] of this.maps.cilium_policy_maps.entries()) into.set(key.readUInt32LE(0), value.readUInt32LE(0));
  }

  private resyncPolicyAttachments(): SyncResult {
    const result: SyncResult = { added: 0, updated: 0, removed: 0 };
    const actual = new Map<number, number>();
    this.readPolicyAttachments(actual);
    for (const id of actual.keys()) {
      if (this.policyAttached.has(id)) continue;
      this.failClosed(id);
      result.removed++;
    }
    for (const [id, mapId] of [...this.policyAttached]) {
      if (actual.get(id) === mapId) continue;
      this.policyAttached.delete(id);
      this.attachPolicy(id, this.policyMap(id, false));
      if (actual.has(id)) result.updated++;
      else result.added++;
    }
    return result;
  }

  private *lxcEntries(): Generator<[string, EndpointInfo]> {
    for (const { key, value } of this.lxc.contents.values()) {
      const ip = decodeEndpointKey(key);
      if (ip !== undefined) yield [ip, decodeEndpointInfo(value)];
    }
  }

  private lxcEntriesOf(id: number): Array<[string, EndpointInfo]> {
    return [...this.lxcEntries()].filter(([, info]) => info.lxcId === id);
  }

  /** The ifindex of the endpoint that owns the frame's source (from-container) or destination. */
  private endpointIfindexOf(program: EndpointProgram, frame: Buffer): number | undefined {
    if (frame.length < FRAME_DADDR_OFFSET + 4 || frame.readUInt16BE(ETH_HLEN - 2) !== ETH_P_IP) return undefined;
    const ip = ipv4String(frame, program === 'from-container' ? FRAME_SADDR_OFFSET : FRAME_DADDR_OFFSET);
    const entry = this.lxc.contents.get(encodeEndpointKey(ip).toString('hex'));
    return entry === undefined ? undefined : decodeEndpointInfo(entry.value).ifindex;
  }

  /**
   * Puts the programs on both hooks of `ifindex` (`owner` names it in errors). When a hook fails,
   * the hooks this call newly attached are detached again, so the link is never half enforced.
   */
  private attach(ifindex: number, owner: string): void {
    const added: TcAttachPoint[] = [];
    for (const hook of HOOKS) {
      const prog = this.programs[PROGRAM_OF_HOOK[hook]];
      try {
        const outcome = putProgram(ifindex, hook, prog);
        if (outcome !== 'unchanged') this.programChanges++;
        if (outcome === 'attached') added.push(hook);
      } catch (err) {
        const undone: string[] = [];
        for (const done of added) {
          try {
            this.detachHook(ifindex, done);
            undone.push(done);
          } catch (detachErr) {
            undone.push(`${done} NOT detached (${describeFailure(detachErr)})`);
          }
        }
        const rollback = undone.length > 0 ? `; rolled back ${undone.join(', ')}` : '';
        throw new DatapathError(owner, `cannot attach ${prog.name} on ${hook}: ${describeFailure(err)}${rollback}`, { cause: err });
      }
    }
  }

  private detachHook(ifindex: number, hook: TcAttachPoint): void {
    try {
      tcDetach({ ifindex, hook, handle: TC_HANDLE, priority: TC_PRIORITY });
    } catch (err) {
      if (!(err instanceof BpfError && IGNORABLE_DETACH_ERRNOS.has(err.errno))) throw err;
    }
  }

  private adoptAttachedEndpoints(): void {
    for (const [ip, info] of this.lxcEntries()) {
      try {
        if (HOOKS.some((hook) => tcQuery({ ifindex: info.ifindex, hook, handle: TC_HANDLE, priority: TC_PRIORITY }) !== undefined)) {
          this.attach(info.ifindex, `endpoint ${info.lxcId} link ifindex ${info.ifindex}`);
        }
      } catch (err) {
        // The link may be gone with its pod; pruneEndpoints removes what is left.
        this.log.warn('could not adopt endpoint programs', { endpoint: info.lxcId, ip, ifindex: info.ifindex, error: describeFailure(err) });
      }
    }
  }

  /**
   * The programs stay on the endpoint's veth: without its cilium_lxc entry they drop every IPv4
   * packet there, so a pod that outlives its endpoint is never left unfiltered.
   */
  private removeEndpointState(id: number, leaving: string[]): void {
    for (const [ip] of this.lxcEntriesOf(id)) {
      this.lxc.remove(encodeEndpointKey(ip));
      leaving.push(ip);
    }
    this.failClosed(id);
    this.realized.delete(id);
    this.policyMaps.get(id)?.map.close();
    this.policyMaps.delete(id);
    const pin = this.policyPinPath(id);
    if (existsSync(pin)) unlinkSync(pin);
  }

  /**
   * Runs `change`, which lists in `leaving` the addresses it frees, then drops their conntrack
   * entries so a reuse starts clean: last, so a flush failure leaves nothing else undone, and in
   * one pass over the conntrack maps however many addresses leave. What a failed change freed
   * before failing is flushed too; both failures are kept.
   */
  private freeingAddresses(what: string, change: (leaving: string[]) => void): void {
    const leaving: string[] = [];
    try {
      change(leaving);
    } catch (err) {
      try {
        this.flushConntrack(leaving);
      } catch (flushErr) {
        throw new DatapathError(what, `${describeFailure(err)}; the conntrack of ${leaving.join(', ')} could not be flushed either: ${describeFailure(flushErr)}`, { cause: new AggregateError([err, flushErr], `${what} failed`) });
      }
      throw err;
    }
    this.flushConntrack(leaving);
  }

  /** Drops the conntrack entries of addresses that are leaving: one read of each map. */
  private flushConntrack(ips: readonly string[]): void {
    if (ips.length === 0) return;
    const leaving = new Set(ips.map((ip) => ipv4Bytes(ip).readUInt32BE(0)));
    for (const name of CT_MAPS) {
      const map = this.maps[name];
      const stale: Buffer[] = [];
      for (const [key] of map.lookupBatch()) {
        if (leaving.has(key.readUInt32BE(CT_SADDR_OFFSET)) || leaving.has(key.readUInt32BE(CT_DADDR_OFFSET))) stale.push(key);
      }
      this.writes.delete(name, deleteKeys(map, stale));
    }
  }
}

/**
 * Deletes `keys` in batches; an LRU map may evict a key between listing and deleting, which fails
 * a batch, so then each key is deleted on its own. Returns how many were deleted (what a failed
 * batch removed before failing goes uncounted).
 */
function deleteKeys(map: BpfMap, keys: Buffer[]): number {
  try {
    map.deleteBatch(keys);
    return keys.length;
  } catch (err) {
    if (!(err instanceof BpfError && err.errno === ENOENT)) throw err;
    return keys.filter((key) => map.delete(key)).length;
  }
}
