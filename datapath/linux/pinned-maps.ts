// The datapath's pinned maps read directly, by another process than the one that owns them (the
// CLI's `bpf` commands, which work with the agent down, and the agent's API): only the pin
// directory is needed. Each reader opens the map, decodes every entry with the datapath's codecs
// and closes it again.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../libbpf/map.js';
import { decodeCtEntry, decodeCtTuple, type CtEntry, type CtTuple } from '../maps/ct.js';
import { decodeIpcacheKey, decodeRemoteEndpointInfo, IPCACHE_KEY_LAYOUT, type RemoteEndpointInfo } from '../maps/ipcache.js';
import { decodeEndpointInfo, decodeEndpointKey, ENDPOINT_INFO_LAYOUT, ENDPOINT_KEY_LAYOUT, type EndpointInfo } from '../maps/lxc.js';
import { decodeMetricsKey, sumPerCpu, type Counter, type MetricsKey } from '../maps/metrics.js';
import { decodePolicyKey, decodePolicyValue, type PolicyKey, type PolicyValue } from '../maps/policy.js';
import { endpointIdOfPolicyPin, policyMapName } from './paths.js';

export class PinnedMapError extends Error {
  constructor(pinPath: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot read map ${pinPath}: ${reason} (is that the agent's pin directory, and are you root?)`, { cause });
    this.name = 'PinnedMapError';
  }
}

function withMap<T>(pinPath: string, read: (map: BpfMap) => T): T {
  let map: BpfMap;
  try {
    map = BpfMap.openPinned(pinPath);
  } catch (err) {
    throw new PinnedMapError(pinPath, err);
  }
  try {
    return read(map);
  } finally {
    map.close();
  }
}

export interface LxcRow {
  ip: string;
  /** endpoint_key.key and cluster_id, part of upstream's key string. */
  keyIndex: number;
  clusterId: number;
  info: EndpointInfo;
  /** rt_info, the member our decoder leaves out (its pad0). */
  rtInfo: number;
}

export function readEndpoints(pinDir: string): LxcRow[] {
  return withMap(path.join(pinDir, 'cilium_lxc'), (map) => {
    const rows: LxcRow[] = [];
    for (const [key, value] of map.entries()) {
      const ip = decodeEndpointKey(key);
      if (ip === undefined) continue;
      rows.push({
        ip,
        keyIndex: key.readUInt8(ENDPOINT_KEY_LAYOUT.members.key.offset),
        clusterId: key.readUInt16LE(ENDPOINT_KEY_LAYOUT.members.cluster_id.offset),
        info: decodeEndpointInfo(value),
        rtInfo: value.readUInt32LE(ENDPOINT_INFO_LAYOUT.members.pad0.offset),
      });
    }
    return rows;
  });
}

export interface IpcacheRow {
  prefix: string;
  clusterId: number;
  info: RemoteEndpointInfo;
}

export function readIpcache(pinDir: string): IpcacheRow[] {
  return withMap(path.join(pinDir, 'cilium_ipcache_v2'), (map) =>
    [...map.entries()].map(([key, value]) => ({
      prefix: decodeIpcacheKey(key),
      clusterId: key.readUInt16LE(IPCACHE_KEY_LAYOUT.members.cluster_id.offset),
      info: decodeRemoteEndpointInfo(value),
    })),
  );
}

export interface PolicyRow {
  key: PolicyKey;
  value: PolicyValue;
}

export interface PolicyMapContent {
  endpointId: number;
  path: string;
  entries: PolicyRow[];
}

export function policyMapPath(pinDir: string, endpointId: number): string {
  return path.join(pinDir, policyMapName(endpointId));
}

export function readPolicyMap(pinDir: string, endpointId: number): PolicyMapContent {
  const pin = policyMapPath(pinDir, endpointId);
  const entries = withMap(pin, (map) => [...map.entries()].map(([k, v]) => ({ key: decodePolicyKey(k), value: decodePolicyValue(v) })));
  return { endpointId, path: pin, entries };
}

/** Every endpoint policy map pinned in `pinDir`, by endpoint id. */
export function readAllPolicyMaps(pinDir: string): PolicyMapContent[] {
  let names: string[];
  try {
    names = readdirSync(pinDir);
  } catch (err) {
    throw new PinnedMapError(pinDir, err);
  }
  return names
    .map(endpointIdOfPolicyPin)
    .filter((id): id is number => id !== undefined)
    .sort((a, b) => a - b)
    .map((id) => readPolicyMap(pinDir, id));
}

export interface CtRow {
  tuple: CtTuple;
  entry: CtEntry;
}

/** upstream ctmap.Maps order: TCP, then non-TCP. */
export const CT_MAP_NAMES = ['cilium_ct4_global', 'cilium_ct_any4_global'] as const;

export function readConntrack(pinDir: string): Array<{ name: string; rows: CtRow[] }> {
  return CT_MAP_NAMES.map((name) => ({
    name,
    rows: withMap(path.join(pinDir, name), (map) => [...map.entries()].map(([k, v]) => ({ tuple: decodeCtTuple(k), entry: decodeCtEntry(v) }))),
  }));
}

export interface MetricsRow {
  key: MetricsKey;
  counter: Counter;
}

export function readMetrics(pinDir: string): MetricsRow[] {
  return withMap(path.join(pinDir, 'cilium_metrics'), (map) => [...map.keys()].map((key) => ({ key: decodeMetricsKey(key), counter: sumPerCpu(map.lookupPerCpu(key)) })));
}
