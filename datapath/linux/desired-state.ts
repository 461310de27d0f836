// Checks of the desired state handed to LinuxDatapath, before anything is written: every error
// names the field, its value and the allowed range, instead of a bare RangeError from a codec.
import { decodeRemoteEndpointInfo, encodeIpcacheKey, encodeRemoteEndpointInfo } from '../maps/ipcache.js';
import { assertIfName, assertIPv4, assertMac } from '../netns/validate.js';
import { IPCACHE_SOURCE_PRECEDENCE, type EndpointSpec, type IPCacheEntry, type IPCacheSource } from '../types.js';
import { DatapathError } from './errors.js';
import type { MapContents, MapEntry } from './map-sync.js';

/** Node-local endpoint ids, as upstream allocates them. */
const MAX_ENDPOINT_ID = 4095;
const MAX_IDENTITY = 0xffffffff;

export function checkEndpointId(id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_ENDPOINT_ID) {
    throw new DatapathError(`endpoint ${id}`, `id ${id} must be an integer 1..${MAX_ENDPOINT_ID}`);
  }
}

function checkIdentity(subject: string, identity: number): void {
  if (!Number.isInteger(identity) || identity < 1 || identity > MAX_IDENTITY) {
    throw new DatapathError(subject, `identity ${identity} must be an integer 1..${MAX_IDENTITY}`);
  }
}

/** Runs a validator of datapath/netns or the codecs, giving its failure the subject. */
function checked<T>(subject: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new DatapathError(subject, (err as Error).message, { cause: err });
  }
}

export function checkEndpointSpec(ep: EndpointSpec): void {
  checkEndpointId(ep.id);
  const subject = `endpoint ${ep.id}`;
  checkIdentity(subject, ep.identity);
  if (!Number.isInteger(ep.ifindex) || ep.ifindex < 1) throw new DatapathError(subject, `ifindex ${ep.ifindex} is not a valid interface index`);
  checked(subject, () => {
    assertIfName(ep.ifname, 'ifname');
    assertIPv4(ep.ipv4, 'ipv4');
    assertMac(ep.mac.toLowerCase(), 'mac');
    assertMac(ep.nodeMac.toLowerCase(), 'nodeMac');
  });
}

function ipcacheSubject(index: number, e: IPCacheEntry): string {
  return `ipcache entry ${index} (${String(e.prefix)})`;
}

/** cilium_ipcache_v2 contents for `entries`; one prefix given twice must name one row. */
export function ipcacheContents(entries: readonly IPCacheEntry[], maxEntries: number): MapContents {
  const desired = new Map<string, MapEntry>();
  // Many prefixes share an identity and node: encode each value once.
  const values = new Map<string, Buffer>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const row = { identity: e.identity, tunnelEndpoint: e.tunnelEndpoint ?? '0.0.0.0', encryptKey: e.encryptKey ?? 0, flags: e.flags ?? 0 };
    const valueId = `${row.identity}/${row.tunnelEndpoint}/${row.encryptKey}/${row.flags}`;
    let value = values.get(valueId);
    if (value === undefined) {
      checkIdentity(ipcacheSubject(i, e), e.identity);
      for (const field of ['encryptKey', 'flags'] as const) {
        if (!Number.isInteger(row[field]) || row[field] < 0 || row[field] > 0xff) throw new DatapathError(ipcacheSubject(i, e), `${field} ${row[field]} must be an integer 0..255`);
      }
      value = checked(ipcacheSubject(i, e), () => encodeRemoteEndpointInfo(row));
      values.set(valueId, value);
    }
    const key = checked(ipcacheSubject(i, e), () => encodeIpcacheKey(e.prefix));
    const hex = key.toString('hex');
    const prev = desired.get(hex);
    if (prev !== undefined && prev.value !== value) {
      const had = decodeRemoteEndpointInfo(prev.value);
      throw new DatapathError(ipcacheSubject(i, e), `prefix given twice with different rows (identity ${had.identity} via ${had.tunnelEndpoint} and identity ${e.identity} via ${row.tunnelEndpoint})`);
    }
    desired.set(hex, { key, value });
  }
  if (desired.size > maxEntries) throw new DatapathError('cilium_ipcache_v2', `${desired.size} prefixes exceed its ${maxEntries} entries`);
  return desired;
}

/**
 * cilium_ipcache_v2 contents of all sources: the first source in IPCACHE_SOURCE_PRECEDENCE wins a
 * prefix several give; `restored` (rows a previous process left) comes last.
 */
export function mergeIpcacheSources(sources: ReadonlyMap<IPCacheSource, MapContents>, restored: MapContents | undefined, maxEntries: number): MapContents {
  const merged = new Map<string, MapEntry>();
  for (const layer of [...IPCACHE_SOURCE_PRECEDENCE.map((s) => sources.get(s)), restored]) {
    for (const [hex, entry] of layer ?? []) if (!merged.has(hex)) merged.set(hex, entry);
  }
  if (merged.size > maxEntries) throw new DatapathError('cilium_ipcache_v2', `${merged.size} prefixes of all sources exceed its ${maxEntries} entries`);
  return merged;
}
