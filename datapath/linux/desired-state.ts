// Checks of the desired state handed to LinuxDatapath, before anything is written: every error
// names the field, its value and the allowed range, instead of a bare RangeError from a codec.
import { encodeIpcacheKey, encodeRemoteEndpointInfo } from '../maps/ipcache.js';
import { assertIfName, assertIPv4, assertMac } from '../netns/validate.js';
import type { EndpointSpec, IPCacheEntry } from '../types.js';
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

/** cilium_ipcache contents for `entries`; one prefix given twice must name one identity. */
export function ipcacheContents(entries: readonly IPCacheEntry[], maxEntries: number): MapContents {
  const desired = new Map<string, MapEntry>();
  // Many prefixes share an identity: encode each value once.
  const values = new Map<number, Buffer>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    let value = values.get(e.identity);
    if (value === undefined) {
      checkIdentity(ipcacheSubject(i, e), e.identity);
      value = encodeRemoteEndpointInfo({ identity: e.identity, tunnelEndpoint: '0.0.0.0', encryptKey: 0, flags: 0 });
      values.set(e.identity, value);
    }
    const key = checked(ipcacheSubject(i, e), () => encodeIpcacheKey(e.prefix));
    const hex = key.toString('hex');
    const prev = desired.get(hex);
    if (prev !== undefined && prev.value !== value) {
      throw new DatapathError(ipcacheSubject(i, e), `prefix given twice with different identities (${prev.value.readUInt32LE(0)} and ${e.identity})`);
    }
    desired.set(hex, { key, value });
  }
  if (desired.size > maxEntries) throw new DatapathError('cilium_ipcache', `${desired.size} prefixes exceed its ${maxEntries} entries`);
  return desired;
}
