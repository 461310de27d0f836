// What the control-plane bench applies: pods spread over label sets, and CiliumNetworkPolicies
// selecting those label sets, a mix of L3 (fromEndpoints), L4 (fromEndpoints + toPorts) and CIDR
// (egress toCIDR + toPorts) rules.
import type { V1Pod } from '@kubernetes/client-node';
import type { CiliumNetworkPolicy } from '../../crds/gen/index.js';

export const APP_LABEL = 'app';

/** Pod i carries label set i % labelSets. */
export function labelSetOf(i: number, labelSets: number): string {
  return `a${i % labelSets}`;
}

export function benchPod(i: number, labelSets: number, namespace: string, nodeName: string): V1Pod {
  return {
    metadata: { name: `pod-${i}`, namespace, labels: { [APP_LABEL]: labelSetOf(i, labelSets) } },
    spec: { nodeName, containers: [{ name: 'c', image: 'busybox' }] },
  };
}

export type PolicyShape = 'l3' | 'l4' | 'cidr';

/** Two in five policies are L3, two L4, one CIDR. */
export function policyShape(j: number): PolicyShape {
  const r = j % 5;
  return r < 2 ? 'l3' : r < 4 ? 'l4' : 'cidr';
}

/** The port an L4 policy opens at first; updates move it elsewhere. */
export function initialPort(j: number): number {
  return 1000 + j;
}

export function benchPolicy(j: number, labelSets: number, namespace: string, port = initialPort(j)): CiliumNetworkPolicy {
  const selected = { matchLabels: { [APP_LABEL]: labelSetOf(j, labelSets) } };
  const peer = (offset: number) => [{ matchLabels: { [APP_LABEL]: labelSetOf(j + offset, labelSets) } }];
  const tcp = [{ ports: [{ port: String(port), protocol: 'TCP' as const }] }];
  const shape = policyShape(j);
  const spec: CiliumNetworkPolicy['spec'] =
    shape === 'l3'
      ? { endpointSelector: selected, ingress: [{ fromEndpoints: peer(1) }] }
      : shape === 'l4'
        ? { endpointSelector: selected, ingress: [{ fromEndpoints: peer(3), toPorts: tcp }] }
        : { endpointSelector: selected, egress: [{ toCIDR: [`10.${100 + Math.floor(j / 256)}.${j % 256}.0/24`], toPorts: tcp }] };
  return { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name: `policy-${j}`, namespace }, spec };
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error(`percentile p${p}: no samples`);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function p50p99(samples: readonly number[]): { p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const round = (n: number) => Math.round(n * 10) / 10;
  return { p50: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)) };
}

/** Runs `work` over `items` with at most `limit` in flight; the first failure rejects. */
export async function inPool<T>(items: readonly T[], limit: number, work: (item: T, index: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await work(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
