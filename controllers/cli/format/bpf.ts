// The `bpf` commands' text (cilium-dbg/cmd/bpf_*_list.go, bpf_policy_get.go, and the String
// methods of pkg/maps/{lxcmap,ipcache,policymap,ctmap,metricsmap} they print).
import type { CtRow, IpcacheRow, LxcRow, MetricsRow, PolicyMapContent, PolicyRow } from '../../../datapath/linux/pinned-maps.js';
import { authTypeName, bpfFileName, protocolName, reasonName } from '../text/datapath-names.js';
import { goHexWidth, padRight } from '../text/go-format.js';
import { compareBytes } from '../text/labels.js';
import { tabwrite } from '../text/tabwriter.js';

// lxcmap EndpointFlagHost: the node's own address.
const ENDPOINT_FLAG_HOST = 1;

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function byAddress(a: string, b: string): number {
  const [ipA = '', bitsA = '32'] = a.split(/[/:@]/);
  const [ipB = '', bitsB = '32'] = b.split(/[/:@]/);
  return ipv4Number(ipA) - ipv4Number(ipB) || Number(bitsA) - Number(bitsB) || compareBytes(a, b);
}

/** AddrCluster / PrefixCluster String: "@<cluster>" only for a non-zero cluster. */
function withCluster(text: string, clusterId: number): string {
  return clusterId === 0 ? text : `${text}@${clusterId}`;
}

function upperMac(mac: string): string {
  return mac.toUpperCase();
}

/** lxcmap EndpointInfo String. */
export function endpointInfoString(row: LxcRow): string {
  const i = row.info;
  if (i.flags & ENDPOINT_FLAG_HOST) return '(localhost)';
  const flags = `0x${i.flags.toString(16).toUpperCase().padStart(4, '0')}`;
  return `id=${padRight(i.lxcId, 5)} sec_id=${padRight(i.secId, 5)} flags=${flags} ifindex=${padRight(i.ifindex, 3)} mac=${upperMac(i.mac)} nodemac=${upperMac(i.nodeMac)} parent_ifindex=${padRight(i.parentIfindex, 3)} rt_info:${row.rtInfo}`;
}

/** The key → values map upstream's Dump fills and prints or marshals, keys in address order. */
export function endpointDump(rows: readonly LxcRow[]): Map<string, string[]> {
  return groupSorted(rows.map((r) => [`${withCluster(r.ip, r.clusterId)}:${r.keyIndex}`, endpointInfoString(r)]));
}

const IPCACHE_FLAGS: Array<[number, string]> = [
  [1, 'skiptunnel'],
  [2, 'hastunnel'],
  [4, 'ipv6tunnel'],
  [8, 'remotecluster'],
];

export function ipcacheInfoString(row: IpcacheRow): string {
  const names = IPCACHE_FLAGS.filter(([bit]) => row.info.flags & bit).map(([, name]) => name);
  return `identity=${row.info.identity} encryptkey=${row.info.encryptKey} tunnelendpoint=${row.info.tunnelEndpoint} flags=${names.length > 0 ? names.join(',') : '<none>'}`;
}

export function ipcacheDump(rows: readonly IpcacheRow[]): Map<string, string[]> {
  return groupSorted(rows.map((r) => [withCluster(r.prefix, r.clusterId), ipcacheInfoString(r)]));
}

function groupSorted(pairs: Array<[string, string]>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [k, v] of pairs.sort((a, b) => byAddress(a[0], b[0]))) out.set(k, [...(out.get(k) ?? []), v]);
  return out;
}

/**
 * cilium-dbg's TablePrinter. Upstream walks a Go map, so its row order changes from run to run;
 * ours is by address.
 */
export function formatKeyValueTable(firstTitle: string, secondTitle: string, data: ReadonlyMap<string, readonly string[]>): string {
  let text = `${firstTitle}\t${secondTitle}\n`;
  for (const [key, values] of data) values.forEach((v, i) => (text += `${i === 0 ? key : ''}\t${v}\t\n`));
  return tabwrite(text, { minwidth: 5, padding: 3 });
}

/** The `-o json` form of a dump: Go marshals a map with its keys sorted. */
export function dumpJson(data: ReadonlyMap<string, readonly string[]>): Record<string, readonly string[]> {
  return Object.fromEntries([...data].sort((a, b) => compareBytes(a[0], b[0])));
}

const NEXTHDR_BITS = 8;
const FULL_PREFIX_BITS = 24;

/** policymap PolicyKey PortProtoString. */
export function portProtoString(row: PolicyRow): string {
  const { protocol, dport, prefixLen } = row.key;
  const proto = protocolName(protocol);
  if (prefixLen === 0 || prefixLen === NEXTHDR_BITS) return proto;
  if (prefixLen > NEXTHDR_BITS && prefixLen < FULL_PREFIX_BITS) return `${dport}-${dport + (0xffff >> (prefixLen - NEXTHDR_BITS))}/${proto}`;
  if (prefixLen === FULL_PREFIX_BITS) return `${dport}/${proto}`;
  return `<INVALID PREFIX LENGTH: ${prefixLen}>`;
}

/** Deny entries first, then ingress before egress, then by peer identity (PolicyEntriesDump.Less), then by port. */
export function sortPolicyRows(rows: readonly PolicyRow[]): PolicyRow[] {
  const rank = (r: PolicyRow): number[] => [r.value.deny ? 0 : 1, r.key.egress ? 1 : 0, r.key.identity, r.key.protocol, r.key.dport, r.key.prefixLen];
  return [...rows].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return ra[i]! - rb[i]!;
    return 0;
  });
}

export interface PolicyTableOptions {
  /** -n: peer identities as numbers. */
  numeric?: boolean;
  /** The peer identity's printable labels; undefined when unknown (the number is printed). */
  labelsOf?: (id: number) => string[] | undefined;
}

/** One policy map as upstream's printTable prints it. */
export function formatPolicyTable(rows: readonly PolicyRow[], opts: PolicyTableOptions = {}): string {
  let text = `POLICY\tDIRECTION\t${opts.numeric ? 'IDENTITY' : 'LABELS (source:key[=value])'}\tPORT/PROTO\tPROXY PORT\tAUTH TYPE\tBYTES\tPACKETS\tPREFIX\tCOOKIE\n`;
  for (const row of sortPolicyRows(rows)) {
    const cells = [
      row.value.deny ? 'Deny' : 'Allow',
      row.key.egress ? 'Egress' : 'Ingress',
      String(row.key.identity),
      portProtoString(row),
      row.value.proxyPort !== 0 ? String(row.value.proxyPort) : 'NONE',
      authTypeName(row.value.authType),
      // No per-entry counters in this datapath: upstream prints "-" for a stat it cannot read.
      '-',
      '-',
      String(row.key.prefixLen),
      String(row.value.cookie),
    ];
    const labels = opts.numeric ? undefined : opts.labelsOf?.(row.key.identity);
    if (labels === undefined || labels.length === 0) {
      text += `${cells.join('\t')}\n`;
      continue;
    }
    labels.forEach((label, i) => {
      const shown = label === 'reserved:unknown' ? 'ANY' : label;
      if (i === 0) text += `${[...cells.slice(0, 2), shown, ...cells.slice(3)].join('\t')}\n`;
      else text += `\t\t${shown}\t\t\t\t\t\t\t\n`;
    });
  }
  let out = tabwrite(text, { minwidth: 5, padding: 3 });
  if (rows.length === 0) out += 'Policy stats empty. Perhaps the policy enforcement is disabled?\n';
  return out;
}

/** `bpf policy get --all`: each map under its endpoint id and path. */
export function formatAllPolicyTables(maps: readonly PolicyMapContent[], opts: PolicyTableOptions = {}): string {
  if (maps.length === 0) return 'no maps found\n';
  return maps.map((m) => `Endpoint ID: ${m.endpointId}\nPath: ${m.path}\n\n${formatPolicyTable(m.entries, opts)}\n\n`).join('');
}

/** The JSON upstream marshals for a policy map dump (PolicyEntryDump fields). */
export function policyRowsJson(rows: readonly PolicyRow[]): object[] {
  return sortPolicyRows(rows).map((r) => ({
    ProxyPortNetwork: ((r.value.proxyPort & 0xff) << 8) | (r.value.proxyPort >> 8),
    Flags: (r.value.deny ? 1 : 0) | (r.value.prefixLen << 3),
    AuthRequirement: r.value.authType,
    Precedence: 0,
    Cookie: r.value.cookie,
    Packets: Number.MAX_SAFE_INTEGER,
    Bytes: Number.MAX_SAFE_INTEGER,
    Key: { Prefixlen: r.key.prefixLen + 40, Identity: r.key.identity, TrafficDirection: r.key.egress ? 1 : 0, Nexthdr: r.key.protocol, DestPortNetwork: ((r.key.dport & 0xff) << 8) | (r.key.dport >> 8) },
  }));
}

// ctmap flag bits in upstream's numbering, which the CLI prints.
const CT_RX_CLOSING = 0x1;
const CT_TX_CLOSING = 0x2;
const CT_SEEN_NON_SYN = 0x10;

function ctFlags(row: CtRow): number {
  return (row.entry.rxClosing ? CT_RX_CLOSING : 0) | (row.entry.txClosing ? CT_TX_CLOSING : 0) | (row.entry.seenNonSyn ? CT_SEEN_NON_SYN : 0);
}

function ctFlagsString(flags: number): string {
  const names = [
    [CT_RX_CLOSING, 'RxClosing'],
    [CT_TX_CLOSING, 'TxClosing'],
    [CT_SEEN_NON_SYN, 'SeenNonSyn'],
  ] as const;
  return `Flags=${goHexWidth(flags, 4)} [ ${names
    .filter(([bit]) => flags & bit)
    .map(([, n]) => `${n} `)
    .join('')}]`;
}

/** One conntrack entry as upstream's ct list line: the flow in original direction, then the entry. */
export function ctLine(row: CtRow): string {
  const t = row.tuple;
  const e = row.entry;
  const dir = t.hook === 'ingress' ? 'IN' : 'OUT';
  const flow = `${protocolName(t.protocol)} ${dir} ${t.saddr}:${t.sport} -> ${t.daddr}:${t.dport} `;
  return `${flow}expires=${e.lifetime} Packets=${e.packets} Bytes=${e.bytes} RxFlagsSeen=${goHexWidth(e.rxFlagsSeen, 2)} LastRxReport=0 TxFlagsSeen=${goHexWidth(e.txFlagsSeen, 2)} LastTxReport=0 ${ctFlagsString(ctFlags(row))} RevNAT=0 SourceSecurityID=${e.srcIdentity} BackendID=0 NatPort=0 \n`;
}

/** `bpf ct list global`: each map's entries, then the empty line fmt.Println adds. */
export function formatConntrack(maps: ReadonlyArray<{ rows: readonly CtRow[] }>): string {
  return maps.map((m) => `${m.rows.filter((r) => r.tuple.protocol !== 0).map(ctLine).join('')}\n`).join('');
}

export function ctRowsJson(maps: ReadonlyArray<{ rows: readonly CtRow[] }>): object[] {
  return maps.flatMap((m) =>
    m.rows.map((r) => ({
      Key: { DestAddr: r.tuple.daddr, SourceAddr: r.tuple.saddr, SourcePort: r.tuple.sport, DestPort: r.tuple.dport, NextHeader: r.tuple.protocol, Flags: r.tuple.hook === 'ingress' ? 1 : 0 },
      Value: { Packets: r.entry.packets, Bytes: r.entry.bytes, Lifetime: r.entry.lifetime, Flags: ctFlags(r), TxFlagsSeen: r.entry.txFlagsSeen, RxFlagsSeen: r.entry.rxFlagsSeen, SourceSecurityID: r.entry.srcIdentity },
    })),
  );
}

function metricsCells(r: MetricsRow): string[] {
  return [reasonName(r.key.reason), r.key.direction.toUpperCase(), String(r.counter.count), String(r.counter.bytes), String(r.key.line), bpfFileName(r.key.file)];
}

/** `bpf metrics list`: one row per map key, rows ordered by their text as upstream does. */
export function formatMetrics(rows: readonly MetricsRow[]): string {
  const lines = rows.map(metricsCells).sort((a, b) => {
    for (let i = 0; i < a.length; i++) {
      const c = compareBytes(a[i]!, b[i]!);
      if (c !== 0) return c;
    }
    return 0;
  });
  return tabwrite(['REASON\tDIRECTION\tPACKETS\tBYTES\tLINE\tFILE\n', ...lines.map((c) => `${c.join('\t')}\n`)].join(''), { minwidth: 5, padding: 3 });
}

/** `bpf metrics list -o json`: counters of keys that share reason, direction, line and file summed. */
export function metricsJson(rows: readonly MetricsRow[]): object[] {
  const merged = new Map<string, { reason: string; direction: string; packets: number; bytes: number; line: number; file: string }>();
  for (const r of rows) {
    const m = { reason: reasonName(r.key.reason), direction: r.key.direction, line: r.key.line, file: bpfFileName(r.key.file) };
    const id = JSON.stringify(m);
    const sum = merged.get(id) ?? { ...m, packets: 0, bytes: 0 };
    sum.packets += r.counter.count;
    sum.bytes += r.counter.bytes;
    merged.set(id, sum);
  }
  return [...merged.values()].map((m) => ({ reason: m.reason, direction: m.direction, packets: m.packets, bytes: m.bytes, line: m.line, file: m.file }));
}
