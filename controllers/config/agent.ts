// cilium-agent's options, with upstream's names and defaults.
import { hostname } from 'node:os';
import path from 'node:path';
import { BPFFS_ROOT, DEFAULT_PIN_DIR } from '../../datapath/linux/paths.js';
import { HUBBLE_OPTIONS } from '../agent/hubble/options.js';
import { MAX_CLUSTER_ID } from '../agent/identity/numeric.js';
import { parseIPv4Prefix } from '../../datapath/maps/ipv4.js';
import { checkClusterName, checkListenAddress, loadConfig, type ConfigOf, type OptionSpecs } from './options.js';

/** An IPv4 CIDR, or empty for none. */
function checkIPv4Cidr(v: string): string | undefined {
  if (v === '') return undefined;
  if (!v.includes('/')) return `${JSON.stringify(v)} is not an IPv4 CIDR (address/length)`;
  try {
    parseIPv4Prefix(v);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export const AGENT_OPTIONS = {
  'node-name': { kind: 'string', default: hostname(), env: ['CILIUM_K8S_NODE_NAME', 'K8S_NODE_NAME'], description: 'name of the Kubernetes node this agent runs on' },
  'cluster-name': { kind: 'string', default: 'default', check: checkClusterName, description: 'name of the cluster, in io.cilium.k8s.policy.cluster' },
  'cluster-id': { kind: 'int', default: 0, min: 0, max: MAX_CLUSTER_ID, description: 'unique id of the cluster; selects its identity range' },
  'identity-allocation-mode': {
    kind: 'string',
    default: 'crd',
    choices: ['crd', 'kvstore', 'doublewrite-readkvstore', 'doublewrite-readcrd'],
    supported: ['crd'],
    description: 'where identities are allocated',
  },
  'enable-policy': { kind: 'string', default: 'default', choices: ['default', 'always', 'never'], description: 'policy enforcement mode' },
  // Upstream's auto is always under Kubernetes: kubelet probes reach pods whatever their policy.
  'allow-localhost': { kind: 'string', default: 'auto', choices: ['auto', 'always', 'policy'], description: 'whether the node itself may always reach its endpoints (policy: only when policy allows)' },
  'bpf-root': { kind: 'string', default: BPFFS_ROOT, description: 'bpffs mount point' },
  'bpf-pin-dir': { kind: 'string', default: DEFAULT_PIN_DIR, description: 'bpffs directory the maps are pinned in (cilium-ts)' },
  'state-dir': { kind: 'string', default: '/var/run/cilium', description: 'directory for runtime state' },
  // Upstream's /var/run/cilium/cilium.sock is its state-dir's cilium.sock: derived, agents with their own state dirs get their own sockets.
  'socket-path': { kind: 'string', description: 'unix socket of the agent REST API (default <state-dir>/cilium.sock)' },
  'prometheus-serve-addr': { kind: 'string', default: ':9962', check: checkListenAddress, description: 'metrics listen address; empty disables' },
  'agent-health-port': { kind: 'int', default: 9879, min: 0, max: 65535, description: 'TCP port of the /healthz endpoint' },
  labels: { kind: 'list', default: [], description: 'identity-relevant label prefixes added to the default list ([source:][!]regex)' },
  'label-prefix-file': { kind: 'string', description: 'JSON file replacing the default identity label prefix list' },
  'identity-change-grace-period': { kind: 'duration', default: 5_000, allowZero: true, description: 'delay before a label change moves an endpoint to a new identity' },
  'write-cni-conf-when-ready': { kind: 'string', description: 'write the CNI configuration to this path once the agent is ready' },
  'k8s-kubeconfig-path': { kind: 'string', description: 'kubeconfig of the apiserver; in-cluster config when unset' },
  // Node networking, as upstream's cilium-config keys.
  'routing-mode': { kind: 'string', default: 'tunnel', choices: ['tunnel', 'native'], description: 'how pod traffic reaches other nodes: encapsulated (tunnel) or routed by the underlay (native)' },
  'tunnel-protocol': { kind: 'string', default: 'vxlan', choices: ['vxlan', 'geneve'], supported: ['vxlan'], description: 'encapsulation of the tunnel routing mode' },
  'tunnel-port': { kind: 'int', default: 8472, min: 1, max: 65535, description: 'UDP port of the tunnel device' },
  'enable-ipv4-masquerade': { kind: 'string', default: 'true', choices: ['true', 'false'], description: 'masquerade pod traffic leaving the node to the node address' },
  'ipv4-native-routing-cidr': { kind: 'string', default: '', check: checkIPv4Cidr, description: 'destinations reached without masquerading (the pod network)' },
  mtu: { kind: 'int', default: 0, min: 0, max: 65535, description: 'MTU of the underlay; 0 detects it from the node device' },
  ...HUBBLE_OPTIONS,
} as const satisfies OptionSpecs;

export type AgentConfig = ConfigOf<typeof AGENT_OPTIONS>;

/** Where the agent serves its REST API: socket-path, or cilium.sock in state-dir. */
export function agentSocketPath(config: Pick<AgentConfig, 'socket-path' | 'state-dir'>): string {
  return config['socket-path'] ?? path.join(config['state-dir'], 'cilium.sock');
}

export function loadAgentConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentConfig {
  return loadConfig('cilium-agent', AGENT_OPTIONS, argv, env);
}
