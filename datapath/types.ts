// The contract between the control plane and the kernel. Controllers hand desired state to a
// Datapath; the implementation diffs it against what the eBPF maps hold and writes the difference.

/** Direction of traffic relative to the pod: what it receives (ingress) or sends (egress). */
export type PolicyDirection = 'ingress' | 'egress';

/** A local endpoint (pod) as the datapath needs it; `id` is the node-local endpoint ID, 1..4095. */
export interface EndpointSpec {
  id: number;
  ipv4: string;
  /** Security identity of the endpoint itself. */
  identity: number;
  /** Name of the host-side veth, used in errors and logs; the programs attach by `ifindex`. */
  ifname: string;
  /** Host-side veth: the programs attach here, and judge only packets seen on it. */
  ifindex: number;
  /** Pod-side MAC and host-side MAC, "aa:bb:cc:dd:ee:ff". */
  mac: string;
  nodeMac: string;
}

/**
 * One ipcache row: an IPv4 prefix ("10.0.1.5/32", "0.0.0.0/0"), the identity behind it and, for
 * addresses behind another node, that node's address (upstream remote_endpoint_info). Reserved
 * identities are rows too: host (1) for the node's own addresses, health (4), remote-node (6);
 * only world (2), for what no row covers, is built into the datapath.
 */
export interface IPCacheEntry {
  prefix: string;
  identity: number;
  /** IPv4 address of the node to tunnel to; absent or "0.0.0.0": none. */
  tunnelEndpoint?: string;
  /** IPsec key index (upstream `key`); 0 or absent: none. */
  encryptKey?: number;
  /** Upstream flags: 1 skip tunnel, 2 has tunnel, 4 IPv6 tunnel, 8 remote cluster; 0 or absent: none. */
  flags?: number;
}

/**
 * Who owns a set of ipcache rows. Each source syncs its own rows; where two sources give the same
 * prefix, the earlier source in IPCACHE_SOURCE_PRECEDENCE wins (the node's own and reserved
 * addresses over other nodes, nodes over endpoints, endpoints over CIDR identities).
 */
export type IPCacheSource = 'local' | 'node' | 'endpoint' | 'cidr';

export const IPCACHE_SOURCE_PRECEDENCE: readonly IPCacheSource[] = ['local', 'node', 'endpoint', 'cidr'];

/**
 * One policy map entry. `identity` 0 matches any peer, `protocol` 0 any protocol, `port` 0 any
 * port. A range is `port..endPort`. A port or range with protocol 0 means TCP, UDP and SCTP; only
 * protocol 0 with port 0 and no endPort matches every protocol. For ICMP (protocol 1) `port`
 * holds the ICMP type and 0 is type 0 (echo reply); every ICMP type is `port: 0, endPort: 255`.
 */
export interface PolicyEntry {
  identity: number;
  direction: PolicyDirection;
  protocol: number;
  port: number;
  endPort?: number;
  deny: boolean;
  /** L7 proxy port to redirect to (upstream proxy_port); 0 or absent: none. Carried, not acted on yet. */
  proxyPort?: number;
  /**
   * Upstream auth type (0 none, 1 spire, 2 test-always-fail); 0 or absent: none. An allow that
   * requires authentication drops with 189: nothing in this datapath can authenticate a peer.
   */
  authType?: number;
  /**
   * 32-bit rule cookie written into the map entry and into drop / policy-verdict events, so a
   * flow can name the policy that decided it; 0 or absent: none.
   */
  cookie?: number;
}

/**
 * Which directions an endpoint enforces. A direction that does not enforce allows everything;
 * one that enforces drops what no entry allows, even with no entries at all (a policy whose peers
 * match nothing today). Always given explicitly: an entry count says nothing about enforcement.
 */
export interface Enforcement {
  ingress: boolean;
  egress: boolean;
}

/** Map writes one sync performed; an identical second sync reports all zeros. */
export interface SyncResult {
  added: number;
  updated: number;
  removed: number;
}

/** What an endpoint enforces now, as its last successful syncPolicy left it. */
export interface EndpointPolicyStatus {
  /**
   * False while the endpoint drops everything (203): before its first successful syncPolicy and
   * after one failed, until the next succeeds.
   */
  open: boolean;
  /** The entries and enforcement of the last successful syncPolicy, while `open`. */
  realized?: { entries: readonly PolicyEntry[]; enforcement: Enforcement };
}

/** cilium_metrics summed over CPUs and drop sites. */
export interface MetricCount {
  /** 0 forwarded, otherwise the drop reason. */
  reason: number;
  direction: PolicyDirection | 'unknown';
  count: number;
  bytes: number;
}

/**
 * How pod traffic reaches other nodes (upstream `--routing-mode`): `tunnel` encapsulates it in
 * VXLAN on cilium_vxlan with the source security identity as VNI; `native` leaves it to the
 * routes between nodes, and the receiver takes the identity from its ipcache.
 */
export type RoutingMode = 'tunnel' | 'native';

/** The node's own networking, as setupNode makes it. */
export interface NodeNetworkSpec {
  routingMode: RoutingMode;
  /** This node's underlay IPv4: the tunnel source and the masquerade address. */
  nodeIP: string;
  /** cilium_host's address (/32), the pods' gateway; allocated by the agent from `podCIDR`. */
  routerIP: string;
  /** This node's pod CIDR, "10.0.1.0/24". */
  podCIDR: string;
  /** Traffic to it is never masqueraded (upstream ipv4-native-routing-cidr); absent: `podCIDR` only. */
  nativeRoutingCIDR?: string;
  /** iptables MASQUERADE of pod traffic leaving the node (upstream's non-BPF masquerade). */
  masquerade: boolean;
  /** UDP port of cilium_vxlan (upstream 8472); used in tunnel mode. */
  tunnelPort: number;
  /** Device MTU (upstream `mtu`); 0 or absent: the MTU of the device holding `nodeIP`. */
  mtu?: number;
}

/** What setupNode made. */
export interface NodeNetworkStatus {
  /** The MTU pod routes get: the device MTU, less 50 in tunnel mode (VXLAN overhead). */
  podMtu: number;
  /** ifindex of cilium_host. */
  hostIfindex: number;
  /** ifindex of cilium_vxlan; tunnel mode only. */
  overlayIfindex?: number;
}

/** Another node's pod CIDR and underlay address. */
export interface RemoteNodeRoute {
  podCIDR: string;
  nodeIP: string;
}

export interface Datapath {
  /**
   * Creates or updates an endpoint and attaches its programs. Fail-closed: until its first
   * successful syncPolicy every packet of the endpoint is dropped (reason 203, endpoint not ready).
   * An address another endpoint held is taken over with its conntrack entries flushed.
   */
  upsertEndpoint(ep: EndpointSpec): Promise<void>;
  /**
   * Removes the endpoint's address entry, policy and conntrack. Its programs stay on the veth, which
   * from then on drops every IPv4 packet (132 sent, 151 delivered) until the veth is gone or
   * another endpoint takes it.
   */
  removeEndpoint(id: number): Promise<void>;
  /**
   * Makes `entries` the rows of `source`, leaving other sources' rows alone; the map holds the merge
   * (IPCACHE_SOURCE_PRECEDENCE decides a prefix two sources give) and only the difference is
   * written. Rejects, naming the entry, an identity outside 1..2^32-1 or a malformed prefix.
   */
  syncIPCache(source: IPCacheSource, entries: readonly IPCacheEntry[]): Promise<SyncResult>;
  /**
   * Makes `entries` with `enforcement` the endpoint's policy. When the policy cannot be computed (a
   * bad entry, more than 16384 map entries) or written, the endpoint drops everything (203) until
   * a later sync succeeds, and the promise rejects with the endpoint id and the cause. Live flows
   * are judged by the new policy from their next packet on.
   */
  syncPolicy(endpointId: number, entries: readonly PolicyEntry[], enforcement: Enforcement): Promise<SyncResult>;
  /** What the endpoint enforces now; throws for an endpoint this datapath does not know. */
  endpointPolicy(endpointId: number): EndpointPolicyStatus;
  /**
   * Removes every endpoint whose id is not in `keepIds` (as removeEndpoint: their veths keep
   * dropping); resolves to the removed ids. After a restart, once desired state is known.
   */
  pruneEndpoints(keepIds: Iterable<number>): Promise<number[]>;
  /**
   * Reads every map back and repairs what differs from what the datapath meant to write (failed
   * writes, changes behind its back); resolves to the repairs per map, rejects with every map that
   * could not be repaired.
   */
  resync(): Promise<Record<string, SyncResult>>;
  /**
   * Makes the node's networking in the current network namespace; idempotent, and what it makes
   * outlives the agent (a later process adopts it, as it adopts pins): the cilium_host/cilium_net
   * veth pair (router IP /32 on cilium_host, NOARP, up) with cil_from_host on cilium_host; in tunnel
   * mode cilium_vxlan (external, i.e. collect_md, dstport `tunnelPort`) with cil_from_overlay /
   * cil_to_overlay; in native mode no cilium_vxlan (one left by tunnel mode is removed); the node
   * config map the programs read (routing mode, overlay ifindex, node IP); net.ipv4.ip_forward=1;
   * with `masquerade`, one iptables chain (CILIUM_POST_nat) masquerading pod traffic to anything
   * outside `nativeRoutingCIDR` (else `podCIDR`) that leaves by a device other than the cilium_ ones;
   * without it, that chain and its jump are removed. The pod MTU is `mtu` (else the MTU of the
   * device holding `nodeIP`), less 50 in tunnel mode. Rejects,
   * naming the field, a malformed address, CIDR or port.
   */
  setupNode(spec: NodeNetworkSpec): Promise<NodeNetworkStatus>;
  /**
   * Makes `routes` the node's routes to other nodes' pod CIDRs, changing only what differs (also
   * after a restart: routes found in the kernel are ours when they carry our protocol). Tunnel:
   * `<podCIDR> via <routerIP> dev cilium_host src <routerIP> mtu <podMtu>` (the from-host/
   * from-container programs encapsulate); native: `<podCIDR> via <nodeIP>`. setupNode must come
   * first. Rejects, naming the route, a malformed CIDR or address.
   */
  syncNodeRoutes(routes: readonly RemoteNodeRoute[]): Promise<SyncResult>;
  /** Forward and drop counters by reason and direction. */
  metrics(): MetricCount[];
  /**
   * Decoded datapath events from now until `signal` aborts. Any number of readers each get every
   * event; one that falls more than `maxQueued` events behind (default 65,536) loses its oldest
   * and `onLost` is told how many.
   */
  events(signal?: AbortSignal, onLost?: (count: number) => void, maxQueued?: number): AsyncIterable<DatapathEvent>;
  close(): Promise<void>;
}

/** Event records; the byte layout is documented in bpf/README.md. */
export type DatapathEvent = DropEvent | TraceEvent | PolicyVerdictEvent;

export interface PacketSummary {
  srcIp: string;
  dstIp: string;
  protocol: number;
  srcPort: number;
  dstPort: number;
  /** TCP flags byte, or ICMP type/code packed as type << 8 | code for ICMP. */
  flags: number;
}

interface EventBase {
  endpointId: number;
  srcIdentity: number;
  dstIdentity: number;
  packet: PacketSummary;
}

export interface DropEvent extends EventBase {
  type: 'drop';
  /** Upstream drop reason code, e.g. 133 policy denied, 181 deny-list. */
  reason: number;
  direction: PolicyDirection;
  /** Rule cookie of the policy entry that denied the packet; 0 when no entry decided. */
  cookie: number;
  /**
   * The drop site, as upstream's drop_notify File and Line: the id of the BPF program's source
   * file (1 bpf_host.c, 2 bpf_lxc.c, 3 bpf_overlay.c) and the line there. Every ring-buffer record
   * carries them; an event made elsewhere may leave them out (read as 0, as upstream's unset fields).
   */
  file?: number;
  line?: number;
}

export interface TraceEvent extends EventBase {
  type: 'trace';
  /** Upstream observation point: 0 to-endpoint, 5 from-endpoint, ... */
  observationPoint: number;
  /** Conntrack state: 1 new, 2 established, 3 reply, 4 related. */
  ctState: number;
}

export interface PolicyVerdictEvent extends EventBase {
  type: 'policy-verdict';
  /** The policy direction that decided: a reply re-judged after a policy change reports its flow's. */
  direction: PolicyDirection;
  /** 0 allow, otherwise the negative-free drop reason (133, 181). */
  verdict: number;
  /** Upstream match type: 0 none, 1 L3-only, 2 L3-L4, 3 L4-only, 4 all, 5 L3-proto, 6 proto-only. */
  matchType: number;
  /** Rule cookie of the deciding policy entry; 0 when none decided or it carries none. */
  cookie: number;
}
