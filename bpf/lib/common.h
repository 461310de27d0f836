/* Shared definitions of the endpoint datapath: constants carried over from upstream Cilium
 * (drop reasons, identities, lifetimes) and the packet summary every helper works on. */
#ifndef CILIUM_TS_COMMON_H
#define CILIUM_TS_COMMON_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806

#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPPROTO_SCTP 132

/* Upstream drop reasons (bpf/lib/drop_reasons.h); events and metrics carry them positive. */
#define DROP_INVALID_SIP 132
#define DROP_POLICY 133
#define DROP_INVALID 134
#define DROP_UNKNOWN_L3 139
#define DROP_UNROUTABLE 151
#define DROP_CT_CREATE_FAILED 155
#define DROP_FRAG_NOT_FOUND 175
#define DROP_POLICY_DENY 181
#define DROP_POLICY_AUTH_REQUIRED 189
#define DROP_EP_NOT_READY 203

/* Reserved identity given to peers the ipcache does not know. */
#define WORLD_ID 2

/* Metric and event direction, upstream numbering. */
#define METRIC_INGRESS 1
#define METRIC_EGRESS 2

/* Upstream trace observation points. */
#define TRACE_TO_LXC 0
#define TRACE_FROM_LXC 5

/* File id reported with drops in metrics (upstream keeps one per source file). */
#define FILE_BPF_LXC 1

/* The L3/L4 facts one packet is judged on. Ports are in network order; for ICMP they carry the
 * conntrack convention of ct.h and icmp_type/icmp_code hold the header. */
struct pkt {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u32 len;
	__u16 l4_off;
	__u8 protocol;
	__u8 tcp_flags;
	__u8 icmp_type;
	__u8 icmp_code;
	/* A fragment other than the first: its ports come from cilium_ipv4_frag_datagrams. */
	__u8 is_fragment;
	/* The first fragment of a datagram more fragments follow: its ports are recorded for them
	 * under ip_id once it passes. */
	__u8 is_first_fragment;
	__be16 ip_id;
};

/* ICMPv4 header and types (linux/icmp.h pulls in libc headers a BPF build cannot use). */
struct icmphdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	union {
		struct {
			__be16 id;
			__be16 sequence;
		} echo;
		__be32 gateway;
	} un;
};

#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

#endif
