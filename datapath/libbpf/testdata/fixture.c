// SPDX-License-Identifier: GPL-2.0
// Test fixture for the libbpf bindings: a tc classifier that drops IPv4 UDP, counts packets per
// IP protocol in a map pinned by name, and reports every IPv4 packet through a ring buffer and in
// a one-slot array.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Layout checked from TypeScript through BTF: offsets 0, 4, 8, 9, 16; size 24.
struct fixture_record {
	__u32 saddr;
	__u32 daddr;
	__u8 protocol;
	__u8 verdict;
	__u16 pad;
	union {
		__u64 seen;
		struct {
			__u32 seen_lo;
			__u32 seen_hi;
		};
	};
};

// Nested named structs for the BTF member path checks; the program leaves this map alone.
struct fixture_tuple {
	__u32 saddr;
	__u32 daddr;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};

struct fixture_flow {
	struct fixture_tuple reverse;
	__u64 packets;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, struct fixture_tuple);
	__type(value, struct fixture_flow);
	__uint(max_entries, 16);
} fixture_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} fixture_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 256);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fixture_proto_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct fixture_record);
	__uint(max_entries, 1);
} fixture_last_record SEC(".maps");

// Set from TypeScript before load; 0 keeps the default verdict for UDP.
const volatile __u32 fixture_udp_verdict = TC_ACT_SHOT;

SEC("tc")
int fixture_classify(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct fixture_record *rec;
	__u32 proto, zero = 0;
	__u64 one = 1, *count;
	int verdict;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;

	proto = ip->protocol;
	count = bpf_map_lookup_elem(&fixture_proto_count, &proto);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&fixture_proto_count, &proto, &one, BPF_NOEXIST);

	verdict = proto == IPPROTO_UDP ? fixture_udp_verdict : TC_ACT_OK;

	rec = bpf_map_lookup_elem(&fixture_last_record, &zero);
	if (!rec)
		return TC_ACT_OK;
	rec->saddr = ip->saddr;
	rec->daddr = ip->daddr;
	rec->protocol = ip->protocol;
	rec->verdict = verdict;
	rec->pad = 0;
	rec->seen = count ? *count : 1;
	bpf_ringbuf_output(&fixture_events, rec, sizeof(*rec), 0);
	return verdict;
}

char _license[] SEC("license") = "GPL";
