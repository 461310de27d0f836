/* Every map of the endpoint datapath with its key/value layout. The layouts are documented in
 * bpf/README.md and mirrored by the TypeScript codecs in datapath/maps/, which check them against
 * this object's BTF at load: each struct is named in a map definition so it is present in BTF. */
#ifndef CILIUM_TS_MAPS_H
#define CILIUM_TS_MAPS_H

#include "common.h"

#define ENDPOINT_KEY_IPV4 1
#define ENDPOINT_KEY_IPV6 2

/* cilium_lxc: local endpoints by IP (upstream endpoint_key). IPv4 uses the first 4 bytes. */
struct endpoint_key {
	__u8 ip[16];
	__u8 family;
	__u8 key;
	__u16 cluster_id;
};

/* Upstream endpoint_info; mac and node_mac hold the 6 address bytes in memory order. */
struct endpoint_info {
	__u32 ifindex;
	__u16 unused;
	__u16 lxc_id;
	__u32 flags;
	__u32 pad0;
	__u64 mac;
	__u64 node_mac;
	__u32 sec_id;
	__u32 parent_ifindex;
	__u32 pad[2];
};

/* cilium_ipcache_v2: prefixlen counts the 32 bits of cluster_id/pad/family too. */
struct ipcache_key {
	__u32 prefixlen;
	__u16 cluster_id;
	__u8 pad1;
	__u8 family;
	__u8 ip[16];
};

#define IPCACHE_PREFIX_BASE 32

/* Upstream v2 value: the tunnel endpoint has room for IPv6 (IPv4 in its first 4 bytes); in tunnel
 * mode a row with REMOTE_ENDPOINT_F_HAS_TUNNEL is reached through it. key (IPsec) is carried. */
struct remote_endpoint_info {
	__u32 sec_identity;
	__u8 tunnel_endpoint[16];
	__u16 pad;
	__u8 key;
	__u8 flags;
};

#define REMOTE_ENDPOINT_F_SKIP_TUNNEL 0x1
#define REMOTE_ENDPOINT_F_HAS_TUNNEL 0x2

/* cilium_policy_<id> (upstream v2 policy key/entry). The trie prefix covers sec_label and the
 * egress byte (40 bits) plus 0..24 bits of protocol and port; wildcard identity is sec_label 0,
 * looked up separately. dport is in network order so port ranges are bit prefixes; for ICMP
 * the type sits in its first byte. */
struct policy_key {
	__u32 prefixlen;
	__u32 sec_label;
	__u8 egress;
	__u8 protocol;
	__be16 dport;
};

#define POLICY_FULL_PREFIX 64
#define POLICY_ID_PREFIX 40

/* Upstream's newest policy_entry. flags: bit 0 deny, bits 3-7 the protocol+port prefix length
 * (0 any protocol, 8 protocol with any port, 24 one port). An allow with auth_type drops with 189
 * (no authentication exists here to satisfy it); proxy_port is carried, not acted on. cookie
 * names the rule that wrote the entry and goes into drop and policy-verdict events. */
struct policy_entry {
	__be16 proxy_port;
	__u8 flags;
	__u8 auth_type;
	__u8 proxy_port_priority;
	__u8 pad0;
	__u16 pad1;
	__u32 cookie;
};

#define POLICY_FLAG_DENY 0x01
#define POLICY_PREFIX_SHIFT 3

/* Conntrack tuple (upstream ipv4_ct_tuple). flags says on which hook the flow was first seen:
 * TUPLE_F_OUT on the endpoint's egress (from-container), TUPLE_F_IN on its ingress. */
struct ipv4_ct_tuple {
	__be32 daddr;
	__be32 saddr;
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 flags;
} __attribute__((packed));

#define TUPLE_F_OUT 0
#define TUPLE_F_IN 1

/* Reduced upstream ct_entry: counters, expiry in seconds since boot (ct_now), TCP state, and the
 * policy verdict cache: the policy revision the flow was last allowed at, the port its policy key
 * carries (policy_dport of policy.h), so the flow is judged again when the revision moves, and the
 * ifindex of the endpoint's veth it was allowed on, which spares a packet of a flow whose verdict
 * holds the endpoint lookup (cilium_lxc writes move the revision too). */
struct ct_entry {
	__u64 packets;
	__u64 bytes;
	__u32 lifetime;
	__u16 flags;
	__u8 tx_flags_seen;
	__u8 rx_flags_seen;
	__u32 src_sec_id;
	__u32 policy_rev;
	__be16 policy_dport;
	__u16 pad0;
	__u32 ifindex;
};

#define CT_F_RX_CLOSING 0x1
#define CT_F_TX_CLOSING 0x2
#define CT_F_SEEN_NON_SYN 0x4

/* cilium_metrics (upstream metrics_key/metrics_value): reason 0 is forwarded. */
struct metrics_key {
	__u8 reason;
	__u8 dir;
	__u16 line;
	__u8 file;
	__u8 reserved[3];
};

struct metrics_value {
	__u64 count;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct endpoint_key);
	__type(value, struct endpoint_info);
	__uint(max_entries, 65535);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_lxc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct ipcache_key);
	__type(value, struct remote_endpoint_info);
	__uint(max_entries, 512000);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipcache_v2 SEC(".maps");

#define POLICY_MAP_MAX_ENTRIES 16384

/* Per-endpoint policy maps, created and pinned by the agent as cilium_policy_<5-digit id>,
 * reached through this map so one program serves every endpoint. */
struct policy_map {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct policy_key);
	__type(value, struct policy_entry);
	__uint(max_entries, POLICY_MAP_MAX_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
};

/* The inner map's key and value appear in BTF only through pointers, which leave them incomplete
 * unless some variable holds them whole; libbpf needs their sizes in every object declaring
 * cilium_policy_maps. */
struct policy_map_types {
	struct policy_key key;
	struct policy_entry entry;
};
struct policy_map_types btf_policy_map_types;

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__type(key, __u32);
	__uint(max_entries, 65535);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct policy_map);
} cilium_policy_maps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ipv4_ct_tuple);
	__type(value, struct ct_entry);
	__uint(max_entries, 524288);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ct4_global SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ipv4_ct_tuple);
	__type(value, struct ct_entry);
	__uint(max_entries, 262144);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ct_any4_global SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__type(key, struct metrics_key);
	__type(value, struct metrics_value);
	__uint(max_entries, 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_metrics SEC(".maps");

/* cilium_policy_revision: one u32 the agent bumps after every map write that can change a verdict
 * (policy maps, cilium_policy_maps, cilium_lxc, cilium_ipcache_v2). A conntrack entry allowed at an
 * older revision is judged by policy again before its packet passes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u32);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_policy_revision SEC(".maps");

/* cilium_ipv4_frag_datagrams (upstream): the L4 ports of a fragmented datagram, recorded from its
 * first fragment once that passed, so later fragments (which carry no L4 header) are judged as the
 * same flow. ICMP ports alone do not say the type (an echo request and a reply with id 0 share
 * them), so the record keeps the type and code too. */
struct ipv4_frag_id {
	__be32 daddr;
	__be32 saddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

struct ipv4_frag_l4ports {
	__be16 sport;
	__be16 dport;
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct ipv4_frag_id);
	__type(value, struct ipv4_frag_l4ports);
	__uint(max_entries, 8192);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_ipv4_frag_datagrams SEC(".maps");

/* cilium_node_config: what the agent's setupNode made of this node, read by every program. Zero
 * (before setupNode) is native routing: nothing is encapsulated. */
#define ROUTING_MODE_NATIVE 0
#define ROUTING_MODE_TUNNEL 1

struct node_config {
	__u32 routing_mode;
	/* cilium_vxlan, where encapsulated packets are redirected; 0 none. */
	__u32 overlay_ifindex;
	/* cilium_host. */
	__u32 host_ifindex;
	/* The node's underlay IPv4 (network order): the outer source of its tunnel packets. */
	__be32 node_ip;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct node_config);
	__uint(max_entries, 1);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_node_config SEC(".maps");

#define EVENTS_RING_BYTES (4 * 1024 * 1024)

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, EVENTS_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_events SEC(".maps");

#endif
