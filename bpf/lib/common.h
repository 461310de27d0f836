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
#define DROP_WRITE_ERROR 141
#define DROP_NO_TUNNEL_KEY 147
#define DROP_UNROUTABLE 151
#define DROP_CT_CREATE_FAILED 155
#define DROP_NO_TUNNEL_ENDPOINT 160
#define DROP_INVALID_IDENTITY 171
#define DROP_FRAG_NOT_FOUND 175
#define DROP_POLICY_DENY 181
#define DROP_POLICY_AUTH_REQUIRED 189
#define DROP_EP_NOT_READY 203

/* Reserved identities: world is what the ipcache does not know; host and remote-node are what a
 * node's own traffic is called on its node and on the others. */
#define HOST_ID 1
#define WORLD_ID 2
#define REMOTE_NODE_ID 6

/* Metric and event direction, upstream numbering. */
#define METRIC_INGRESS 1
#define METRIC_EGRESS 2

/* Upstream trace observation points. */
#define TRACE_TO_LXC 0
#define TRACE_TO_OVERLAY 4
#define TRACE_FROM_LXC 5
#define TRACE_FROM_HOST 7
#define TRACE_FROM_OVERLAY 9

/* Source file ids reported with drops in events and metrics (upstream pkg/monitor/api/files.go).
 * Each program file defines BPF_FILE_ID to its own before including the headers. */
#define FILE_BPF_HOST 1
#define FILE_BPF_LXC 2
#define FILE_BPF_OVERLAY 3
#ifndef BPF_FILE_ID
#error "define BPF_FILE_ID (FILE_BPF_LXC, FILE_BPF_HOST, FILE_BPF_OVERLAY) before including lib/common.h"
#endif

/* skb->mark carrying a source identity from one program to another on this node (upstream
 * MARK_MAGIC_IDENTITY): the magic in bits 8-11, identity bits 0-15 in bits 16-31 and identity
 * bits 16-23 in bits 0-7. The mark does not survive a move to another netns, so a pod cannot
 * hand one in. */
#define MARK_MAGIC_HOST_MASK 0x0F00
#define MARK_MAGIC_IDENTITY 0x0F00

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
