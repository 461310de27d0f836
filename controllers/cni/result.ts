// ADD's result, printed in the configuration's cniVersion (upstream builds a 1.0.0 result and lets
// libcni convert it; the conversion is small enough to do here), and the prevResult CHECK reads.
import { CNI_ERR, CniError } from './errors.js';
import { isLegacyResultVersion, type CniVersion } from './versions.js';

export interface Attachment {
  hostIfname: string;
  hostMac: string;
  ifname: string;
  podMac: string;
  /** CNI_NETNS. */
  sandbox: string;
  ip: string;
  router: string;
}

interface ResultIP {
  version?: '4';
  interface: number;
  address: string;
  gateway: string;
}

export interface CniResult {
  cniVersion: CniVersion;
  interfaces: { name: string; mac: string; sandbox?: string }[];
  ips: ResultIP[];
  routes: { dst: string; gw?: string }[];
  dns: Record<string, never>;
}

/**
 * Host veth first, the pod's interface second (the IP points at it), and upstream's two routes:
 * the router's /32 on the link and the default route through it.
 */
export function addResult(a: Attachment, cniVersion: CniVersion): CniResult {
  const ip: ResultIP = { interface: 1, address: `${a.ip}/32`, gateway: a.router };
  return {
    cniVersion,
    interfaces: [
      { name: a.hostIfname, mac: a.hostMac },
      { name: a.ifname, mac: a.podMac, sandbox: a.sandbox },
    ],
    ips: [isLegacyResultVersion(cniVersion) ? { version: '4', ...ip } : ip],
    routes: [{ dst: `${a.router}/32` }, { dst: '0.0.0.0/0', gw: a.router }],
    dns: {},
  };
}

export interface PrevAttachment {
  /** Addresses ("a.b.c.d/len") the result put on `ifname` in the sandbox. */
  addresses: string[];
}

function invalidPrev(reason: string): CniError {
  return new CniError(CNI_ERR.invalidNetworkConfig, 'invalid prevResult', reason);
}

/** The addresses prevResult assigned to `ifname` inside a sandbox (both result shapes carry the same fields for this). */
export function prevAttachment(prevResult: unknown, ifname: string): PrevAttachment {
  if (typeof prevResult !== 'object' || prevResult === null) throw invalidPrev('field "prevResult": must be an object');
  const r = prevResult as { interfaces?: unknown; ips?: unknown };
  if (!Array.isArray(r.interfaces)) throw invalidPrev('field "prevResult.interfaces": must be a list');
  if (!Array.isArray(r.ips)) throw invalidPrev('field "prevResult.ips": must be a list');
  const indices = new Set<number>();
  r.interfaces.forEach((i: unknown, idx) => {
    const iface = i as { name?: unknown; sandbox?: unknown } | null;
    if (iface && iface.name === ifname && typeof iface.sandbox === 'string' && iface.sandbox !== '') indices.add(idx);
  });
  if (indices.size === 0) throw invalidPrev(`field "prevResult.interfaces": no interface ${JSON.stringify(ifname)} with a sandbox`);
  const addresses: string[] = [];
  r.ips.forEach((i: unknown, idx) => {
    const ip = i as { address?: unknown; interface?: unknown } | null;
    if (!ip || typeof ip.address !== 'string') throw invalidPrev(`field "prevResult.ips[${idx}].address": must be a string`);
    if (typeof ip.interface === 'number' && indices.has(ip.interface)) addresses.push(ip.address);
  });
  return { addresses };
}
