// `cilium ip list` (cilium-dbg/cmd/ip_list.go): the agent's userspace ipcache, one row per label
// of each entry's identity (or its number with -n).
import { isIPv4 } from 'node:net';
import type { IPListEntryModel } from '../models.js';
import { identityName } from '../text/labels.js';
import { tabwrite } from '../text/tabwriter.js';

function prefixParts(cidr: string): { bits: number; addr: Buffer } {
  const [ip = '', bits = ''] = cidr.split('/');
  if (isIPv4(ip)) return { bits: Number(bits), addr: Buffer.from([4, ...ip.split('.').map(Number)]) };
  // IPv6 sorts after every IPv4 address (netip.Addr.Less); its text order is enough here.
  return { bits: Number(bits), addr: Buffer.concat([Buffer.from([6]), Buffer.from(ip)]) };
}

/** Shorter prefixes first, then by address, as upstream's IPListEntrySlice.Less. */
export function sortIPList<T extends IPListEntryModel>(entries: readonly T[]): T[] {
  return [...entries].sort((a, b) => {
    const pa = prefixParts(a.cidr ?? '');
    const pb = prefixParts(b.cidr ?? '');
    return pa.bits !== pb.bits ? pa.bits - pb.bits : Buffer.compare(pa.addr, pb.addr);
  });
}

export interface IPListOptions {
  /** -n: identities as numbers. */
  numeric?: boolean;
  /** -v: host and encryption key columns. */
  verbose?: boolean;
  /** Printable labels of an identity; undefined when the agent could not say (the name is printed). */
  labelsOf?: (id: number) => string[] | undefined;
}

export function formatIPList(entries: readonly IPListEntryModel[], opts: IPListOptions = {}): string {
  let text = opts.verbose ? 'IP\tIDENTITY\tSOURCE\tHOST\tENCRYPT_KEY\n' : 'IP\tIDENTITY\tSOURCE\n';
  for (const e of entries) {
    const id = e.identity ?? 0;
    const labels = opts.numeric ? [String(id)] : (opts.labelsOf?.(id) ?? [identityName(id)]);
    const source = e.metadata?.source ?? '';
    labels.forEach((label, i) => {
      if (i > 0) text += `\t${label}\t\n`;
      else if (opts.verbose) text += `${e.cidr ?? ''}\t${label}\t${source}\t${e.hostIP ?? ''}\t${e.encryptKey ?? 0}\n`;
      else text += `${e.cidr ?? ''}\t${label}\t${source}\n`;
    });
  }
  return tabwrite(text, { minwidth: 5, padding: 3 });
}
