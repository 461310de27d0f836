// The contract between the control plane and the kernel. Controllers hand desired state to a
// Datapath; the implementation diffs it against what the eBPF maps hold and writes the difference.

export type Direction = 'ingress' | 'egress';

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

/** One ipcache row: an IPv4 prefix ("10.0.1.5/32", "0.0.0.0/0") and the identity behind it. */
export interface IPCacheEntry {
  prefix: string;
  identity: number;
}

/**
 * One policy map entry. `identity` 0 matches any peer, `protocol` 0 any protocol, `port` 0 any
 * port. A range is `port..endPort`. A port or range with protocol 0 means TCP, UDP and SCTP; only
 * protocol 0 with port 0 and no endPort matches every protocol. For ICMP (protocol 1) `port`
 * holds the ICMP type and 0 is type 0 (echo reply); every ICMP type is `port: 0, endPort: 255`.
 */
export interface PolicyEntry {
  identity: number;
  direction: Direction;
  protocol: number;
  port: number;
  endPort?: number;
  deny: boolean;
  /** L7 proxy port to redirect to (upstream proxy_port); 0 or absent: none. Carried, not acted on yet. */
  proxyPort?: number;
  /** Upstream auth type (0 none, 1 spire, 2 test-always-fail); 0 or absent: none. */
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
 * match nothing today).
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

export interface Datapath {
  /**
   * Creates or updates an endpoint and attaches its programs. Fail-closed: until its first
   * successful syncPolicy every packet of the endpoint is dropped (reason 203, endpoint not ready).
   */
  upsertEndpoint(ep: EndpointSpec): Promise<void>;
  removeEndpoint(id: number): Promise<void>;
  /** Rejects, naming the entry, an identity outside 1..2^32-1 or a malformed prefix. */
  syncIPCache(entries: readonly IPCacheEntry[]): Promise<SyncResult>;
  /**
   * Makes `entries` the endpoint's policy. After a successful sync, an empty policy still allows
   * everything in the directions that do not enforce. When the policy cannot be computed (a bad
   * entry, more than 16384 map entries) or written, the endpoint drops everything (203) until a
   * later sync succeeds, and the promise rejects with the endpoint id and the cause.
   */
  syncPolicy(endpointId: number, entries: readonly PolicyEntry[], enforcement?: Enforcement): Promise<SyncResult>;
  /**
   * Removes every endpoint whose id is not in `keepIds` (its address entry, policy map and
   * attached programs); resolves to the removed ids. After a restart, once desired state is known.
   */
  pruneEndpoints(keepIds: Iterable<number>): Promise<number[]>;
  /** Decoded datapath events until `signal` aborts. */
  events(signal?: AbortSignal): AsyncIterable<DatapathEvent>;
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
  direction: Direction;
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
  direction: Direction;
  /** 0 allow, otherwise the negative-free drop reason (133, 181). */
  verdict: number;
  /** Upstream match type: 0 none, 1 L3-only, 2 L3-L4, 3 L4-only, 4 all, 5 L3-proto, 6 proto-only. */
  matchType: number;
}
