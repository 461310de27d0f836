// `cilium status [--verbose]` (cilium-dbg/cmd/status.go, pkg/client FormatStatusResponse): one
// "Key:  value" line per part of the agent's /healthz answer, in upstream's order and columns.
import type { ControllerStatusModel, StatusResponseModel } from '../models.js';
import { compareBytes } from '../text/labels.js';
import { goDurationSeconds } from '../text/go-format.js';
import { tabwrite } from '../text/tabwriter.js';

export interface StatusOptions {
  /** --verbose: every allocated address and every controller, not only failing ones. */
  verbose?: boolean;
  /** The clock "ago" columns are measured against. */
  now: Date;
}

/** Upstream's exit rule: the agent's own state is neither Ok nor Disabled. */
export function statusUnhealthy(sr: StatusResponseModel): boolean {
  const state = sr.cilium?.state;
  return sr.cilium !== undefined && state !== 'Ok' && state !== 'Disabled';
}

// A controller that has upstream's health endpoint running; the CLI then asks cilium-health.
const HEALTH_ENDPOINT_CONTROLLER = 'cilium-health-ep';

function timeSince(timestamp: string | undefined, now: Date): string {
  const t = timestamp === undefined ? NaN : Date.parse(timestamp);
  // Go's zero time (0001-01-01) is what an unset timestamp decodes to.
  if (Number.isNaN(t) || t <= Date.parse('0001-01-02T00:00:00Z')) return 'never';
  return `${goDurationSeconds((now.getTime() - t) / 1000)} ago`;
}

function enabled(on: boolean | undefined): string {
  return on ? 'Enabled' : 'Disabled';
}

function controllerLines(controllers: readonly ControllerStatusModel[], all: boolean, now: Date): { failing: number; table: string } {
  let failing = 0;
  const rows = ['  Name\tLast success\tLast error\tCount\tMessage\n'];
  for (const c of controllers) {
    const s = c.status;
    if (s === undefined) continue;
    const failures = s['consecutive-failure-count'] ?? 0;
    if (failures > 0) failing++;
    else if (!all) continue;
    const message = s['last-failure-msg'] || 'no error';
    rows.push(`  ${c.name ?? ''}\t${timeSince(s['last-success-timestamp'], now)}\t${timeSince(s['last-failure-timestamp'], now)}\t${failures}\t${message}\t\n`);
  }
  // Upstream sorts the header together with the rows.
  return { failing, table: rows.length > 1 ? tabwrite(rows.sort(compareBytes).join(''), { minwidth: 0, padding: 3 }) : '' };
}

function masquerading(sr: StatusResponseModel): string {
  const m = sr.masquerading!;
  const protocols = m.enabledProtocols;
  if (protocols === undefined) return enabled(m.enabled);
  if (!protocols.ipv4 && !protocols.ipv6) return enabled(false);
  let status = '';
  if (m.mode === 'BPF') {
    status = m['ip-masq-agent'] ? 'BPF (ip-masq-agent)' : 'BPF';
    const kpr = sr['kube-proxy-replacement'];
    if (kpr !== undefined) {
      const devices = (kpr.deviceList ?? []).map((d) => d.name ?? '').join(', ');
      status += `\t[${devices}]\t${m['snat-exclusion-cidr-v4'] ?? ''} ${m['snat-exclusion-cidr-v6'] ?? ''}`;
    }
  } else if (m.mode === 'iptables') {
    status = 'IPTables';
  }
  return `${status} [IPv4: ${enabled(protocols.ipv4)}, IPv6: ${enabled(protocols.ipv6)}]`;
}

const DATAPATH_MODES = new Set(['veth', 'netkit', 'netkit-l2']);

function deviceMode(sr: StatusResponseModel): string {
  const mode = sr['datapath-mode'] ?? '';
  const status = DATAPATH_MODES.has(mode) ? mode : '?';
  const configured = sr['configured-datapath-mode'] ?? '';
  const configStatus = configured === '' ? status : DATAPATH_MODES.has(configured) || configured === 'auto' ? configured : '?';
  return status === configStatus ? status : `${status} [Configured: ${configStatus}]`;
}

function hubble(sr: StatusResponseModel): string {
  const h = sr.hubble!;
  const fields = [h.msg ? `${h.state ?? ''} ${h.msg}` : (h.state ?? '')];
  const o = h.observer;
  if (o !== undefined) {
    const parts: string[] = [];
    const max = o['max-flows'] ?? 0;
    const current = o['current-flows'] ?? 0;
    if (max > 0) parts.push(`Current/Max Flows: ${current}/${max} (${((current / max) * 100).toFixed(2)}%)`);
    // uptime is a Go duration in nanoseconds.
    if (typeof o.uptime === 'number' && o.uptime > 0) parts.push(`Flows/s: ${((o['seen-flows'] ?? 0) / (o.uptime / 1e9)).toFixed(2)}`);
    fields.push(parts.join(', '));
  }
  return fields.join('\t');
}

// "name ip ip (Direct Routing)" per device, as the KubeProxyReplacement line and details list them.
function kubeProxyDevices(sr: StatusResponseModel): string {
  const kpr = sr['kube-proxy-replacement']!;
  return (kpr.deviceList ?? []).map((d) => `${d.name ?? ''} ${(d.ip ?? []).join(' ')}${d.name === kpr.directRoutingDevice ? ' (Direct Routing)' : ''}`).join(', ');
}

/** --verbose: the kube-proxy replacement features, as upstream's indented table. */
function kubeProxyDetails(sr: StatusResponseModel): string {
  const kpr = sr['kube-proxy-replacement']!;
  const f = kpr.features ?? {};
  const np = f.nodePort ?? {};
  const on = (t: { enabled?: boolean } | undefined): string => enabled(t?.enabled);
  let selection = '';
  let mode = '';
  let dsrMode = '';
  let xdp = '';
  if (np.enabled) {
    selection = np.algorithm === 'Maglev' ? `${np.algorithm} (Table Size: ${np.lutSize ?? 0})` : (np.algorithm ?? '');
    xdp = np.acceleration ?? '';
    mode = np.mode ?? '';
    if (mode === 'DSR' || mode === 'Hybrid') dsrMode = np.dsrMode ?? '';
  }
  const devices = kubeProxyDevices(sr);
  let t = `  Status:\t${kpr.mode ?? ''}\n  Socket LB:\t${on(f.socketLB)}\n  Socket LB Tracing:\t${on(f.socketLBTracing)}\n`;
  t += `  Socket LB Coverage:\t${f.bpfSocketLBHostnsOnly ? 'Hostns-only' : 'Full'}\n`;
  if (devices !== '') t += `  Devices:\t${devices}\n`;
  if (mode !== '') t += `  Mode:\t${mode}\n`;
  if (dsrMode !== '') t += `    DSR Dispatch Mode:\t${dsrMode}\n`;
  if (selection !== '') t += `  Backend Selection:\t${selection}\n`;
  t += `  Session Affinity:\t${on(f.sessionAffinity)}\n`;
  const nat = f.nat46X64;
  if (!nat?.enabled) {
    t += '  NAT46/64 Support:\tDisabled\n';
  } else {
    t += `  NAT46/64 Support:\n  - Services:\t${on(nat.service)}\n  - Gateway:\t${on(nat.gateway)}\n`;
    const prefixes = (nat.gateway?.prefixes ?? []).join(', ');
    if (nat.gateway?.enabled && prefixes !== '') t += `    Prefixes:\t${prefixes}\n`;
  }
  if (xdp !== '') t += `  XDP Acceleration:\t${xdp}\n`;
  t += `  Services:\n  - ClusterIP:\tEnabled\n  - NodePort:\t${np.enabled ? `Enabled (Range: ${np.portMin ?? 0}-${np.portMax ?? 0})` : 'Disabled'} \n`;
  t += `  - LoadBalancer:\t${np.enabled ? 'Enabled' : 'Disabled'} \n  - externalIPs:\t${on(f.externalIPs)} \n  - HostPort:\t${on(f.hostPort)}\n`;
  const annotations = f.annotations ?? [];
  t += annotations.length > 0 ? `  Annotations:\n${annotations.map((a) => `  - ${a}\n`).join('')}` : '  Annotations:\t(n/a)\n';
  return `KubeProxyReplacement Details:\n${tabwrite(t, { minwidth: 0, padding: 3 })}`;
}

/** `status --brief`: "OK", or the first unhealthy part as upstream's FormatStatusResponseBrief names it. */
export function formatStatusBrief(sr: StatusResponseModel): string {
  const unhealthy = (state: string | undefined): boolean => state === 'Warning' || state === 'Failure';
  let msg = '';
  if (unhealthy(sr.kvstore?.state)) msg = `kvstore: ${sr.kvstore?.msg ?? ''}`;
  else if (unhealthy(sr.kubernetes?.state)) msg = `kubernetes: ${sr.kubernetes?.msg ?? ''}`;
  else if (unhealthy(sr.cilium?.state)) msg = `cilium: ${sr.cilium?.msg ?? ''}`;
  else if (unhealthy(sr.cluster?.ciliumHealth?.state)) msg = `cilium-health: ${sr.cluster?.ciliumHealth?.msg ?? ''}`;
  else {
    const failing = (sr.controllers ?? []).find((c) => (c.status?.['last-failure-msg'] ?? '') !== '');
    if (failing) msg = `controller ${failing.name ?? ''}: ${failing.status?.['last-failure-msg'] ?? ''}`;
  }
  return msg === '' ? 'OK\n' : `error in ${msg}\n`;
}

export function formatStatus(sr: StatusResponseModel, opts: StatusOptions): string {
  let w = '';
  if (sr.kvstore) w += `KVStore:\t${sr.kvstore.state ?? ''}\t${sr.kvstore.msg ?? ''}\n`;
  if (sr.kubernetes) {
    w += `Kubernetes:\t${sr.kubernetes.state ?? ''}\t${sr.kubernetes.msg ?? ''}\n`;
    if (sr.kubernetes.state !== 'Disabled') w += `Kubernetes APIs:\t["${[...(sr.kubernetes['k8s-api-versions'] ?? [])].sort(compareBytes).join('", "')}"]\n`;
  }
  const kpr = sr['kube-proxy-replacement'];
  if (kpr) {
    const devices = kpr.mode !== 'False' ? kubeProxyDevices(sr) : '';
    w += `KubeProxyReplacement:\t${kpr.mode ?? ''}\t${devices !== '' ? `[${devices}]` : ''}\n`;
  }
  const fw = sr['host-firewall'];
  if (fw) w += `Host firewall:\t${fw.mode ?? ''}${fw.mode !== 'Disabled' ? `\t[${(fw.devices ?? []).join(', ')}]` : ''}\n`;
  if (sr['cni-chaining']) w += `CNI Chaining:\t${sr['cni-chaining'].mode ?? ''}\n`;
  if (sr['cni-file']) w += `CNI Config file:\t${sr['cni-file'].msg ?? ''}\n`;
  if (sr.cilium) w += `Cilium:\t${sr.cilium.state ?? ''}   ${sr.cilium.msg ?? ''}\n`;
  if (sr.stale) {
    const stale = Object.keys(sr.stale).sort(compareBytes).map((probe) => `${JSON.stringify(probe)} since ${sr.stale![probe]}`);
    w += `Stale status:\t${stale.join(', ')}\n`;
  }
  const nm = sr.nodeMonitor;
  if (nm) {
    w += `NodeMonitor:\tListening for events on ${nm.cpus ?? 0} CPUs with ${nm.npages ?? 0}x${nm.pagesize ?? 0} of shared memory\n`;
    if ((nm.lost ?? 0) !== 0 || (nm.unknown ?? 0) !== 0) w += `\t${nm.lost ?? 0} events lost, ${nm.unknown ?? 0} unknown notifications\n`;
  } else {
    w += 'NodeMonitor:\tDisabled\n';
  }
  const health = sr.cluster?.ciliumHealth;
  if (health) w += `Cilium health daemon:\t${health.state ?? ''}\t${health.msg ?? ''}\n`;
  if (sr.ipam) {
    w += `IPAM:\t${sr.ipam.status ?? ''}\n`;
    if (opts.verbose) {
      w += 'Allocated addresses:\n';
      const allocations = Object.entries(sr.ipam.allocations ?? {}).map(([ip, owner]) => `  ${ip} (${owner})`);
      for (const line of allocations.sort(compareBytes)) w += `${line}\n`;
    }
  }
  const bw = sr['bandwidth-manager'];
  if (bw) w += `BandwidthManager:\t${bw.enabled ? `EDT with BPF [${(bw.congestionControl ?? '').toUpperCase()}] [${(bw.devices ?? []).join(', ')}]` : 'Disabled'}\n`;
  const routing = sr.routing;
  if (routing) {
    const network = routing['inter-host-routing-mode'] ?? '';
    w += `Routing:\tNetwork: ${network}${network === 'Tunnel' ? ` [${routing['tunnel-protocol'] ?? ''}]` : ''}\tHost: ${routing['intra-host-routing-mode'] ?? ''}\n`;
  }
  if (sr['attach-mode']) w += `Attach Mode:\t${sr['attach-mode'] === 'tcx' ? 'TCX' : 'Legacy TC'}\n`;
  if (sr['datapath-mode'] || sr['configured-datapath-mode']) w += `Device Mode:\t${deviceMode(sr)}\n`;
  if (sr.masquerading) w += `Masquerading:\t${masquerading(sr)}\n`;
  const clock = sr['clock-source'];
  if (opts.verbose && clock) w += `Clock Source for BPF:\t${clock.mode === 'jiffies' ? `${clock.mode}\t[${clock.hertz ?? 0} Hz]` : (clock.mode ?? '')}\n`;
  if (sr.controllers) {
    const { failing, table } = controllerLines(sr.controllers, opts.verbose ?? false, opts.now);
    w += `Controller Status:\t${sr.controllers.length - failing}/${sr.controllers.length} healthy\n${table}`;
  }
  const proxy = sr.proxy;
  if (proxy) {
    w += `Proxy Status:\tOK, ip ${proxy.ip ?? ''}, ${proxy['total-redirects'] ?? 0} redirects active on ports ${proxy['port-range'] ?? ''}, Envoy: ${proxy['envoy-deployment-mode'] ?? ''}\n`;
    if (opts.verbose && (proxy['total-redirects'] ?? 0) > 0) {
      const rows = (proxy.redirects ?? []).map((r) => `  ${r.proxy ?? ''}\t${r.name ?? ''}\t${r['proxy-port'] ?? 0}\n`).sort(compareBytes);
      w += tabwrite(`  Protocol\tRedirect\tProxy Port\n${rows.join('')}`, { minwidth: 0, padding: 3 });
    }
  } else {
    w += 'Proxy Status:\tNo managed proxy redirect\n';
  }
  const range = sr['identity-range'];
  w += range ? `Global Identity Range:\tmin ${range['min-identity'] ?? 0}, max ${range['max-identity'] ?? 0}\n` : 'Global Identity Range:\tUnknown\n';
  if (sr.hubble) w += `Hubble:\t${hubble(sr)}\n`;
  if (opts.verbose && sr.kubernetes && sr['kube-proxy-replacement']) w += kubeProxyDetails(sr);
  const bpfMaps = sr['bpf-maps'];
  if (opts.verbose && bpfMaps) {
    const ratio = bpfMaps['dynamic-size-ratio'] ?? 0;
    w += `BPF Maps:\tdynamic sizing: ${ratio > 0 && ratio <= 1 ? `on (ratio: ${ratio.toFixed(6)})` : 'off'}\n`;
    w += tabwrite(`  Name\tSize\n${(bpfMaps.maps ?? []).map((m) => `  ${m.name ?? ''}\t${m.size ?? 0}\n`).join('')}`, { minwidth: 0, padding: 3 });
  }
  if (sr.encryption) w += `Encryption:\t${sr.encryption.mode ?? ''}\t${sr.encryption.msg ?? ''}\n`;
  // An unhealthy agent ends the report here, as upstream exits before the health part.
  if (!statusUnhealthy(sr) && !(sr.controllers ?? []).some((c) => c.name === HEALTH_ENDPOINT_CONTROLLER)) w += 'Cluster health:\tProbe disabled\n';
  return tabwrite(w, { minwidth: 2, padding: 3 });
}
