// `hubble status` and `hubble list nodes` output as upstream prints them (printer
// WriteServerStatusResponse, cmd/list/node.go).
import { goJson, goJsonIndent } from '../../cli/text/go-format.js';
import { tabwrite } from '../../cli/text/tabwriter.js';
import { toProtoJson } from './protojson.js';

export interface ServerStatusResponse {
  num_flows: string;
  max_flows: string;
  seen_flows: string;
  uptime_ns: string;
  num_connected_nodes: { value: number } | null;
  num_unavailable_nodes: { value: number } | null;
  unavailable_nodes: string[];
  version: string;
  flows_rate: number;
}

export interface NodeInfo {
  name: string;
  version: string;
  address: string;
  state: string;
  tls: { enabled: boolean; server_name: string } | null;
  uptime_ns: string;
  num_flows: string;
  max_flows: string;
  seen_flows: string;
}

const NA = 'N/A';

/** Upstream uint64Grouping: 1000000 → 1,000,000. */
export function grouped(n: string | bigint): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function fraction(n: bigint, unit: bigint, digits: number): string {
  const whole = n / unit;
  const frac = (n % unit).toString().padStart(digits, '0').replace(/0+$/, '');
  return frac === '' ? String(whole) : `${whole}.${frac}`;
}

/** Go's time.Duration String of a count of nanoseconds. */
export function goDuration(nsText: string | bigint): string {
  const ns = BigInt(nsText);
  if (ns > 0x7fffffffffffffffn) return `${ns}ns`;
  if (ns === 0n) return '0s';
  if (ns < 1_000n) return `${ns}ns`;
  if (ns < 1_000_000n) return `${fraction(ns, 1_000n, 3)}µs`;
  if (ns < 1_000_000_000n) return `${fraction(ns, 1_000_000n, 6)}ms`;
  const h = ns / 3_600_000_000_000n;
  const m = (ns / 60_000_000_000n) % 60n;
  const s = fraction(ns % 60_000_000_000n, 1_000_000_000n, 9);
  if (h > 0n) return `${h}h${m}m${s}s`;
  if (m > 0n) return `${m}m${s}s`;
  return `${s}s`;
}

/** Go's Duration.Round(time.Second) (halves away from zero). */
function roundToSecond(ns: bigint): bigint {
  return ((ns + 500_000_000n) / 1_000_000_000n) * 1_000_000_000n;
}

const percent = (num: string, max: string) => ((Number(num) / Number(max)) * 100).toFixed(2);

export function serverStatusText(res: ServerStatusResponse, output: 'compact' | 'dict' | 'table' | 'jsonpb'): string {
  const connected = res.num_connected_nodes;
  const unavailable = res.num_unavailable_nodes;
  const numConnected = connected ? String(connected.value) : NA;
  const numUnavailable = unavailable ? String(unavailable.value) : NA;
  let flowsPerSec = res.flows_rate > 0 ? res.flows_rate.toFixed(2) : NA;
  switch (output) {
    case 'jsonpb':
      return `${goJson(toProtoJson('observer.ServerStatusResponse', res as unknown as Record<string, unknown>))}\n`;
    case 'table':
      return tabwrite(
        `NUM FLOWS\tMAX FLOWS\tSEEN FLOWS\tFLOWS PER SECOND\tUPTIME\tNUM CONNECTED NODES\tNUM UNAVAILABLE NODES\tVERSION\n${grouped(res.num_flows)}\t${grouped(res.max_flows)}\t${grouped(res.seen_flows)}\t${flowsPerSec}\t${goDuration(res.uptime_ns)}\t${numConnected}\t${numUnavailable}\t${res.version}\n`,
        { minwidth: 2, padding: 3 },
      );
    case 'dict':
      return [
        `          NUM FLOWS: ${grouped(res.num_flows)}`,
        `          MAX FLOWS: ${grouped(res.max_flows)}`,
        `         SEEN FLOWS: ${grouped(res.seen_flows)}`,
        `   FLOWS PER SECOND: ${flowsPerSec}`,
        `             UPTIME: ${goDuration(res.uptime_ns)}`,
        `NUM CONNECTED NODES: ${numConnected}`,
        ` NUM UNAVAIL. NODES: ${numUnavailable}`,
        `            VERSION: ${res.version}`,
        '',
      ].join('\n');
    case 'compact': {
      const ratio = BigInt(res.max_flows) > 0n ? ` (${percent(res.num_flows, res.max_flows)}%)` : '';
      let text = `Current/Max Flows: ${grouped(res.num_flows)}/${grouped(res.max_flows)}${ratio}\n`;
      const uptimeS = Number(BigInt(res.uptime_ns)) / 1e9;
      if (flowsPerSec === NA && uptimeS > 0) flowsPerSec = (Number(res.seen_flows) / uptimeS).toFixed(2);
      text += `Flows/s: ${flowsPerSec}\n`;
      if (connected) text += `Connected Nodes: ${connected.value}${unavailable ? `/${unavailable.value + connected.value}` : ''}\n`;
      if (unavailable && unavailable.value > 0) {
        const names = [...res.unavailable_nodes].sort();
        if (names.length > 0) {
          if (unavailable.value > names.length) names.push(`and ${unavailable.value - names.length} more...`);
          text += `Unavailable Nodes: ${unavailable.value}\n  - ${names.join('\n  - ')}\n`;
        } else text += `Unavailable Nodes: ${unavailable.value}\n`;
      }
      return text;
    }
  }
}

const STATES: Readonly<Record<string, string>> = { NODE_CONNECTED: 'Connected', NODE_UNAVAILABLE: 'Unavailable', NODE_GONE: 'Gone', NODE_ERROR: 'Error' };

/** `hubble list nodes` (-o table, wide or json), nodes sorted by name. */
export function nodesText(list: readonly NodeInfo[], output: 'table' | 'wide' | 'json'): string {
  const nodes = [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (output === 'json') return `${goJsonIndent(nodes.map((n) => toProtoJson('observer.Node', n as unknown as Record<string, unknown>)))}\n`;
  const wide = output === 'wide';
  let text = `NAME\tSTATUS\tAGE\tFLOWS/S\tCURRENT/MAX-FLOWS${wide ? '\tVERSION\tADDRESS\tTLS' : ''}\n`;
  for (const n of nodes) {
    let age = NA;
    let flowsPerSec = NA;
    const uptime = roundToSecond(BigInt(n.uptime_ns));
    if (uptime > 0n) {
      age = goDuration(uptime);
      flowsPerSec = (Number(n.seen_flows) / Number(uptime / 1_000_000_000n)).toFixed(2);
    }
    const ratio = BigInt(n.max_flows) > 0n ? `${n.num_flows}/${n.max_flows} (${percent(n.num_flows, n.max_flows).padStart(6, ' ')}%)` : NA;
    text += `${n.name}\t${STATES[n.state] ?? 'Unknown'}\t${age}\t${flowsPerSec}\t${ratio}`;
    if (wide) text += `\t${n.version === '' ? NA : n.version}\t${n.address}\t${n.tls === null ? NA : n.tls.enabled ? 'Enabled' : 'Disabled'}`;
    text += '\n';
  }
  return tabwrite(text, { minwidth: 2, padding: 3 });
}
