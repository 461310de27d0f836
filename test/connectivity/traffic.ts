// Real traffic from inside a pod, through `kubectl exec`, judged by the tool's exit code as
// upstream's curl/ping actions are. Every tool runs under busybox `timeout` (its `wget -T`
// segfaults here), so a dropped packet costs at most TRAFFIC_TIMEOUT_S.
import { IPPROTO_ICMP, IPPROTO_TCP } from '../../datapath/maps/protocols.js';
import type { CommandResult } from '../envtest/command.js';
import { kubectl } from '../node/cluster.js';
import type { ConnectivityCluster } from './cluster.js';
import type { Peer } from './workloads.js';

export const TRAFFIC_TIMEOUT_S = 4;

export type Probe = { kind: 'http'; ip: string; port: number } | { kind: 'ping'; ip: string };

export function probeProtocol(p: Probe): number {
  return p.kind === 'http' ? IPPROTO_TCP : IPPROTO_ICMP;
}

export function describeProbe(p: Probe): string {
  return p.kind === 'http' ? `http://${p.ip}:${p.port}/` : `ping ${p.ip}`;
}

function command(p: Probe): string[] {
  const bounded = ['timeout', String(TRAFFIC_TIMEOUT_S)];
  return p.kind === 'http' ? [...bounded, 'wget', '-qO', '/dev/null', `http://${p.ip}:${p.port}/`] : [...bounded, 'ping', '-c', '1', '-W', String(TRAFFIC_TIMEOUT_S - 1), p.ip];
}

export function runProbe(cluster: ConnectivityCluster, from: Peer, p: Probe): Promise<CommandResult> {
  return kubectl(cluster, ['exec', '-n', from.namespace, from.pod, '--', ...command(p)]);
}
