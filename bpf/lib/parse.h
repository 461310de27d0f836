/* Reading the IPv4 and L4 headers of a packet on a tc hook into struct pkt. */
#ifndef CILIUM_TS_PARSE_H
#define CILIUM_TS_PARSE_H

#include <linux/ip.h>
#include "common.h"
#include "maps.h"

#define IP_FRAG_OFFSET_MASK 0x1fff
#define IP_MF 0x2000

/* First 14 bytes of a TCP header: enough for ports and the flags byte. */
struct tcp_head {
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__be32 ack;
	__u8 doff;
	__u8 flags;
};

struct l4_ports {
	__be16 sport;
	__be16 dport;
};

/* `len` bytes at `off` of the packet in its linear data, or NULL when they are not all there. */
static __always_inline void *skb_linear(struct __sk_buff *skb, __u32 off, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;

	if (off <= 0xffff && data + off + len <= data_end)
		return data + off;
	return NULL;
}

/* A pointer to `len` bytes at `off` of the packet: straight into its linear data when they are
 * there (no helper call, no copy: what every packet pays for its headers), else a copy into `buf`
 * through bpf_skb_load_bytes, which also reads paged data. NULL when the packet is shorter. */
static __always_inline const void *skb_header(struct __sk_buff *skb, __u32 off, const __u32 len, void *buf)
{
	const void *linear = skb_linear(skb, off, len);

	if (linear)
		return linear;
	if (bpf_skb_load_bytes(skb, off, buf, len) < 0)
		return NULL;
	return buf;
}

/* Copies `len` bytes at `off` of the packet into `to`, as skb_header finds them. Headers sit
 * 2-byte aligned at least (the Ethernet header is 14 bytes), so the copy uses halfword loads
 * rather than bytes. */
static __always_inline int skb_read(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	const void *linear = skb_linear(skb, off, len);

	if (linear) {
		__builtin_memcpy(to, __builtin_assume_aligned(linear, 2), len);
		return 0;
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* ICMP becomes a conntrack flow too. Echo request and reply are keyed by the echo id: the
 * request puts it in sport, the reply in dport, so reversing a reply's tuple finds its request.
 * Every other type puts the type in dport's first byte (where the policy key has it), so one
 * allowed type does not make another type between the same hosts look established. */
static __always_inline void icmp_ports(const struct icmphdr *icmp, __be16 *sport, __be16 *dport)
{
	*sport = 0;
	*dport = 0;
	if (icmp->type == ICMP_ECHO)
		*sport = icmp->un.echo.id;
	else if (icmp->type == ICMP_ECHOREPLY)
		*dport = icmp->un.echo.id;
	else
		*dport = bpf_htons((__u16)icmp->type << 8);
}

/* Ports of the L4 header at `off` (the conntrack convention above for ICMP, whose type and code
 * land in *icmp when given). Only the first 8 bytes are read: all an ICMP error quotes. */
static __always_inline int load_l4_ports(struct __sk_buff *skb, __u32 off, __u8 protocol,
					 __be16 *sport, __be16 *dport, struct icmphdr *icmp)
{
	if (protocol == IPPROTO_ICMP) {
		struct icmphdr h;

		if (skb_read(skb, off, &h, sizeof(h)) < 0)
			return -DROP_INVALID;
		icmp_ports(&h, sport, dport);
		if (icmp)
			*icmp = h;
		return 0;
	}
	if (protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP) {
		struct l4_ports ports;

		if (skb_read(skb, off, &ports, sizeof(ports)) < 0)
			return -DROP_INVALID;
		*sport = ports.sport;
		*dport = ports.dport;
	}
	return 0;
}

/* The ports (and TCP flags, ICMP type/code) of a packet that carries its L4 header. */
static __always_inline int parse_ipv4_l4(struct __sk_buff *skb, struct pkt *p)
{
	int ret;

	if (p->protocol == IPPROTO_TCP) {
		const struct tcp_head *tcp;
		struct tcp_head buf;

		tcp = skb_header(skb, p->l4_off, sizeof(buf), &buf);
		if (!tcp)
			return -DROP_INVALID;
		p->sport = tcp->sport;
		p->dport = tcp->dport;
		p->tcp_flags = tcp->flags;
		return 0;
	}
	if (p->protocol == IPPROTO_ICMP) {
		struct icmphdr icmp = {};

		ret = load_l4_ports(skb, p->l4_off, p->protocol, &p->sport, &p->dport, &icmp);
		p->icmp_type = icmp.type;
		p->icmp_code = icmp.code;
		return ret;
	}
	return load_l4_ports(skb, p->l4_off, p->protocol, &p->sport, &p->dport, NULL);
}

/* Fragments of one datagram share addresses, protocol and IP id (upstream's key). */
static __always_inline void frag_id_of(const struct pkt *p, struct ipv4_frag_id *id)
{
	id->daddr = p->daddr;
	id->saddr = p->saddr;
	id->id = p->ip_id;
	id->proto = p->protocol;
	id->pad = 0;
}

/* Returns 0 or a negative drop reason. A fragment other than the first carries no L4 header: it
 * takes the ports (and ICMP type and code) its first fragment recorded, and without them it drops
 * (175), as upstream. Nothing is recorded here: only a first fragment that passed is
 * (frag_record), so a dropped or spoofed one leaves nothing for later fragments to ride on. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct pkt *p)
{
	struct ipv4_frag_l4ports *rec;
	const struct iphdr *ip;
	struct ipv4_frag_id id;
	struct iphdr buf;

	ip = skb_header(skb, ETH_HLEN, sizeof(buf), &buf);
	if (!ip || ip->version != 4 || ip->ihl < 5)
		return -DROP_INVALID;
	p->saddr = ip->saddr;
	p->daddr = ip->daddr;
	p->protocol = ip->protocol;
	p->len = skb->len;
	p->l4_off = ETH_HLEN + ip->ihl * 4;
	p->ip_id = ip->id;
	p->is_fragment = (ip->frag_off & bpf_htons(IP_FRAG_OFFSET_MASK)) != 0;
	if (p->is_fragment) {
		frag_id_of(p, &id);
		rec = bpf_map_lookup_elem(&cilium_ipv4_frag_datagrams, &id);
		if (!rec)
			return -DROP_FRAG_NOT_FOUND;
		p->sport = rec->sport;
		p->dport = rec->dport;
		p->icmp_type = rec->icmp_type;
		p->icmp_code = rec->icmp_code;
		return 0;
	}
	p->is_first_fragment = (ip->frag_off & bpf_htons(IP_MF)) != 0;
	return parse_ipv4_l4(skb, p);
}

/* Records the ports of a first fragment that passed, for the later fragments of its datagram. */
static __always_inline void frag_record(const struct pkt *p)
{
	struct ipv4_frag_l4ports rec = {
		.sport = p->sport,
		.dport = p->dport,
		.icmp_type = p->icmp_type,
		.icmp_code = p->icmp_code,
	};
	struct ipv4_frag_id id;

	if (!p->is_first_fragment)
		return;
	frag_id_of(p, &id);
	bpf_map_update_elem(&cilium_ipv4_frag_datagrams, &id, &rec, BPF_ANY);
}

#endif
