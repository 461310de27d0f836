// Names upstream's tools print for datapath numbers: drop and forward reasons
// (pkg/monitor/api/drop.go), BPF source files (files.go), observation points (types.go), conntrack
// states of trace events and policy match types.

const REASONS: Record<number, string> = {
  0: 'Success',
  2: 'Invalid packet',
  3: 'Interface',
  4: 'Interface Decrypted',
  5: 'LB, sock cgroup: No backend slot entry found',
  6: 'LB, sock cgroup: No backend entry found',
  7: 'LB, sock cgroup: Reverse entry update failed',
  8: 'LB, sock cgroup: Reverse entry stale',
  9: 'Fragmented packet',
  10: 'Fragmented packet entry update failed',
  11: 'Missed tail call to custom program',
  12: 'Interface Decrypting',
  13: 'Interface Encrypting',
  14: 'LB: sock cgroup: Reverse entry delete succeeded',
  15: 'MTU error message',
  130: 'Invalid source mac',
  131: 'Invalid destination mac',
  132: 'Invalid source ip',
  133: 'Policy denied',
  134: 'Invalid packet',
  135: 'CT: Truncated or invalid header',
  136: 'Fragmentation needed',
  137: 'CT: Unknown L4 protocol',
  138: "CT: Can't create entry from packet",
  139: 'Unsupported L3 protocol',
  140: 'Missed tail call',
  141: 'Error writing to packet',
  142: 'Unknown L4 protocol',
  143: 'Unknown ICMPv4 code',
  144: 'Unknown ICMPv4 type',
  145: 'Unknown ICMPv6 code',
  146: 'Unknown ICMPv6 type',
  147: 'Error retrieving tunnel key',
  148: 'Error retrieving tunnel options',
  149: 'Invalid Geneve option',
  150: 'Unknown L3 target address',
  151: 'Stale or unroutable IP',
  152: 'No matching local container found',
  153: 'Error while correcting L3 checksum',
  154: 'Error while correcting L4 checksum',
  155: 'CT: Map insertion failed',
  156: 'Invalid IPv6 extension header',
  157: 'IP fragmentation not supported',
  158: 'Service backend not found',
  160: 'No tunnel/encapsulation endpoint (datapath BUG!)',
  161: 'NAT 46/64 not enabled',
  162: 'Reached EDT rate-limiting drop horizon',
  163: 'Unknown connection tracking state',
  164: 'Local host is unreachable',
  165: 'No configuration available to perform policy decision',
  166: 'Unsupported L2 protocol',
  167: 'No mapping for NAT masquerade',
  168: 'Unsupported protocol for NAT masquerade',
  169: 'FIB lookup failed',
  170: 'Encapsulation traffic is prohibited',
  171: 'Invalid identity',
  172: 'Unknown sender',
  173: 'NAT not needed',
  174: 'Is a ClusterIP',
  175: 'First logical datagram fragment not found',
  176: 'Forbidden ICMPv6 message',
  177: 'Denied by LB src range check',
  178: 'Socket lookup failed',
  179: 'Socket assign failed',
  180: 'Proxy redirection not supported for protocol',
  181: 'Policy denied by denylist',
  182: 'VLAN traffic disallowed by VLAN filter',
  183: 'Incorrect VNI from VTEP',
  184: 'Failed to update or lookup TC buffer',
  185: 'No SID was found for the IP address',
  186: 'SRv6 state was removed during tail call',
  187: 'L3 translation from IPv4 to IPv6 failed (NAT46)',
  188: 'L3 translation from IPv6 to IPv4 failed (NAT64)',
  189: 'Authentication required',
  190: 'No conntrack map found',
  191: 'No nat map found',
  192: 'Invalid ClusterID',
  193: 'Unsupported packet protocol for DSR encapsulation',
  194: 'No egress gateway found',
  195: 'Traffic is unencrypted',
  196: 'TTL exceeded',
  197: 'No node ID found',
  198: 'Rate limited',
  199: 'IGMP handled',
  200: 'IGMP subscribed',
  201: 'Multicast handled',
  202: 'Host datapath not ready',
  203: 'Endpoint policy program not available',
  204: 'No Egress IP configured',
  205: 'Punt to proxy',
  206: 'No device',
  207: 'First logical datagram fragment not found from world',
};

/** A drop or forward reason code as upstream names it; an unknown code prints as "N, 0". */
export function reasonName(code: number): string {
  return REASONS[code] ?? `${code}, 0`;
}

const BPF_FILES: Record<number, string> = {
  1: 'bpf_host.c',
  2: 'bpf_lxc.c',
  3: 'bpf_overlay.c',
  4: 'bpf_xdp.c',
  5: 'bpf_sock.c',
  7: 'bpf_wireguard.c',
  101: 'drop.h',
  102: 'srv6.h',
  103: 'icmp6.h',
  104: 'nodeport.h',
  105: 'lb.h',
  106: 'mcast.h',
  107: 'ipv4.h',
  108: 'conntrack.h',
  109: 'local_delivery.h',
  110: 'trace.h',
  111: 'encap.h',
  112: 'host_firewall.h',
  113: 'nodeport_egress.h',
  114: 'ipv6.h',
  115: 'classifiers.h',
};

export function bpfFileName(id: number): string {
  return BPF_FILES[id] ?? `unknown(${id})`;
}

const MATCH_TYPES: Record<number, string> = { 0: 'none', 1: 'L3-Only', 2: 'L3-L4', 3: 'L4-Only', 4: 'all', 5: 'L3-Proto', 6: 'Proto-Only' };

export function policyMatchName(matchType: number): string {
  return MATCH_TYPES[matchType] ?? 'unknown';
}

const OBSERVATION_POINTS: Record<number, string> = {
  0: 'to-endpoint',
  1: 'to-proxy',
  2: 'to-host',
  3: 'to-stack',
  4: 'to-overlay',
  5: 'from-endpoint',
  6: 'from-proxy',
  7: 'from-host',
  8: 'from-stack',
  9: 'from-overlay',
  10: 'from-network',
  11: 'to-network',
  12: 'from-crypto',
  13: 'to-crypto',
};

export function observationPointName(point: number): string {
  return OBSERVATION_POINTS[point] ?? String(point);
}

// Our trace events number conntrack states from 1 (datapath/types.ts TraceEvent.ctState), as
// flow.TraceReason does; 0 is a trace taken before any conntrack lookup (at the tunnel), upstream's
// TRACE_REASON_UNKNOWN.
const CT_STATES: Record<number, string> = { 0: 'unknown', 1: 'new', 2: 'established', 3: 'reply', 4: 'related' };

export function ctStateName(state: number): string {
  return CT_STATES[state] ?? String(state);
}

// pkg/u8proto names.
const PROTOCOLS: Record<number, string> = { 0: 'ANY', 1: 'ICMP', 2: 'IGMP', 4: 'IPIP', 6: 'TCP', 17: 'UDP', 41: 'IPv6', 47: 'GRE', 50: 'ESP', 51: 'AH', 58: 'ICMPv6', 112: 'VRRP', 132: 'SCTP' };

export function protocolName(proto: number): string {
  return PROTOCOLS[proto] ?? String(proto);
}

const AUTH_TYPES: Record<number, string> = { 0: 'disabled', 1: 'spire', 2: 'test-always-fail' };

export function authTypeName(authType: number): string {
  return AUTH_TYPES[authType] ?? `Unknown-auth-type-${authType}`;
}
