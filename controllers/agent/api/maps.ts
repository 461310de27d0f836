// /map and /map/{name}: the maps pinned in the agent's bpffs directory with their entries, as
// upstream's BPFMapList/BPFMap (key and value as text; the endpoint and ipcache maps decoded the
// way `cilium-dbg bpf endpoint|ipcache list` prints them, others as hex).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { BpfMap } from '../../../datapath/libbpf/map.js';
import { decodeIpcacheKey, decodeRemoteEndpointInfo } from '../../../datapath/maps/ipcache.js';
import { decodeEndpointInfo, decodeEndpointKey } from '../../../datapath/maps/lxc.js';

export interface BPFMapEntry {
  key: string;
  value: string;
  'desired-action': 'ok';
}

export interface BPFMapModel {
  path: string;
  cache: BPFMapEntry[];
}

const MAP_NAME = /^[A-Za-z0-9_]{1,64}$/;

export function isMapName(name: string): boolean {
  return MAP_NAME.test(name);
}

function hex(buf: Buffer): string {
  return [...buf].map((b) => b.toString(16).padStart(2, '0')).join(' ');
}

/** `key`/`value` text of one entry of the map called `name`. */
export function formatEntry(name: string, key: Buffer, value: Buffer): { key: string; value: string } {
  if (name === 'cilium_lxc') {
    const i = decodeEndpointInfo(value);
    return {
      key: decodeEndpointKey(key) ?? hex(key),
      value: `id=${i.lxcId} sec_id=${i.secId} flags=0x${i.flags.toString(16).padStart(4, '0')} ifindex=${i.ifindex} mac=${i.mac} nodemac=${i.nodeMac} parent_ifindex=${i.parentIfindex}`,
    };
  }
  if (name === 'cilium_ipcache_v2') {
    const v = decodeRemoteEndpointInfo(value);
    return { key: decodeIpcacheKey(key), value: `identity=${v.identity} encryptkey=${v.encryptKey} tunnelendpoint=${v.tunnelEndpoint} flags=${v.flags === 0 ? '<none>' : `0x${v.flags.toString(16)}`}` };
  }
  return { key: hex(key), value: hex(value) };
}

/** The map pinned at `dir/name` with its entries; undefined when no map is pinned under that name. */
export function readPinnedMap(dir: string, name: string): BPFMapModel | undefined {
  const pinPath = path.join(dir, name);
  let map: BpfMap;
  try {
    map = BpfMap.openPinned(pinPath);
  } catch {
    return undefined;
  }
  try {
    // A ring buffer has no entries to read, and reading it would consume the events.
    if (map.type === 'ringbuf') return { path: pinPath, cache: [] };
    let entries: Array<[Buffer, Buffer]>;
    try {
      entries = map.lookupBatch();
    } catch {
      entries = [];
    }
    return { path: pinPath, cache: entries.map(([k, v]) => ({ ...formatEntry(name, k, v.subarray(0, map.valueSize)), 'desired-action': 'ok' })) };
  } finally {
    map.close();
  }
}

export function listPinnedMaps(dir: string): BPFMapModel[] {
  return readdirSync(dir)
    .filter(isMapName)
    .sort()
    .map((name) => readPinnedMap(dir, name))
    .filter((m): m is BPFMapModel => m !== undefined);
}
