/* IPv4 connection tracking in cilium_ct4_global (TCP) and cilium_ct_any4_global (the rest).
 * Each endpoint hook keeps its own entry for a flow: tuple in packet orientation, flags naming
 * the hook (TUPLE_F_OUT = endpoint egress, TUPLE_F_IN = endpoint ingress). A reply is found by
 * reversing the tuple and flipping the flags. */
#ifndef CILIUM_TS_CT_H
#define CILIUM_TS_CT_H

#include <linux/ip.h>
#include "common.h"
#include "maps.h"
#include "parse.h"

/* Conntrack states, numbered as the trace reason of Hubble flows. */
#define CT_NEW 1
#define CT_ESTABLISHED 2
#define CT_REPLY 3
#define CT_RELATED 4

/* Upstream default lifetimes in seconds. */
#define CT_LIFETIME_TCP 8000
#define CT_LIFETIME_NONTCP 60
#define CT_SYN_TIMEOUT 60
#define CT_CLOSE_TIMEOUT 10

#define NSEC_PER_SEC 1000000000ULL

static __always_inline __u32 ct_now(void)
{
	return bpf_ktime_get_ns() / NSEC_PER_SEC;
}

static __always_inline void *ct_map_for(__u8 protocol)
{
	if (protocol == IPPROTO_TCP)
		return &cilium_ct4_global;
	return &cilium_ct_any4_global;
}

static __always_inline void ct_tuple_forward(struct ipv4_ct_tuple *t, __be32 saddr, __be32 daddr,
					     __be16 sport, __be16 dport, __u8 protocol, __u8 flags)
{
	t->daddr = daddr;
	t->saddr = saddr;
	t->dport = dport;
	t->sport = sport;
	t->nexthdr = protocol;
	t->flags = flags;
}

static __always_inline void ct_tuple_reverse(struct ipv4_ct_tuple *t, __be32 saddr, __be32 daddr,
					     __be16 sport, __be16 dport, __u8 protocol, __u8 flags)
{
	ct_tuple_forward(t, daddr, saddr, dport, sport, protocol, flags);
}

/* Advances the TCP state and expiry of an entry for one packet; writes only what changes so
 * established flows do not dirty the entry on every packet. */
static __always_inline void ct_update_state(struct ct_entry *e, const struct pkt *p, int reply, __u32 now)
{
	__u32 lifetime = CT_LIFETIME_NONTCP;

	if (p->protocol == IPPROTO_TCP) {
		__u16 flags = e->flags;

		if (reply) {
			if ((e->rx_flags_seen | p->tcp_flags) != e->rx_flags_seen)
				e->rx_flags_seen |= p->tcp_flags;
		} else if ((e->tx_flags_seen | p->tcp_flags) != e->tx_flags_seen) {
			e->tx_flags_seen |= p->tcp_flags;
		}
		if (!(p->tcp_flags & TCP_FLAG_SYN))
			flags |= CT_F_SEEN_NON_SYN;
		if (p->tcp_flags & TCP_FLAG_RST)
			flags |= CT_F_RX_CLOSING | CT_F_TX_CLOSING;
		else if (p->tcp_flags & TCP_FLAG_FIN)
			flags |= reply ? CT_F_RX_CLOSING : CT_F_TX_CLOSING;
		if (flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING))
			lifetime = CT_CLOSE_TIMEOUT;
		else if (flags & CT_F_SEEN_NON_SYN)
			lifetime = CT_LIFETIME_TCP;
		else
			lifetime = CT_SYN_TIMEOUT;
		if (flags != e->flags)
			e->flags = flags;
	}
	lifetime += now;
	if (e->lifetime != lifetime)
		e->lifetime = lifetime;
}

static __always_inline int ct_is_pure_syn(const struct pkt *p)
{
	return p->protocol == IPPROTO_TCP && (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* Returns CT_ESTABLISHED, CT_REPLY or CT_NEW, with the flow's entry in *entry for the first two.
 * A fresh SYN on a closing entry starts a new connection and so goes through policy again. The
 * entry is not touched: only a packet that passes is counted (ct_account), so a flow that policy
 * now denies is not kept alive by the packets it drops. */
static __always_inline int ct_lookup4(void *map, const struct pkt *p, __u8 dir, __u32 now, struct ct_entry **entry)
{
	struct ipv4_ct_tuple t;
	struct ct_entry *e;

	ct_tuple_forward(&t, p->saddr, p->daddr, p->sport, p->dport, p->protocol, dir);
	e = bpf_map_lookup_elem(map, &t);
	if (e && e->lifetime >= now) {
		if (ct_is_pure_syn(p) && (e->flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING)))
			return CT_NEW;
		*entry = e;
		return CT_ESTABLISHED;
	}

	ct_tuple_reverse(&t, p->saddr, p->daddr, p->sport, p->dport, p->protocol, dir ^ 1);
	e = bpf_map_lookup_elem(map, &t);
	if (e && e->lifetime >= now) {
		*entry = e;
		return CT_REPLY;
	}
	return CT_NEW;
}

/* Counts a packet that passes on its flow's entry and advances the entry's state and expiry. */
static __always_inline void ct_account(struct ct_entry *e, const struct pkt *p, int reply, __u32 now)
{
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, p->len);
	ct_update_state(e, p, reply, now);
}

/* The ICMP errors upstream accepts as related to a flow; redirects and source quench are not. */
static __always_inline int icmp_is_error(__u8 type)
{
	return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

/* A live entry whose cached verdict holds at revision `rev`. */
static __always_inline int ct_entry_current(void *map, const struct ipv4_ct_tuple *t, __u32 now, __u32 rev)
{
	struct ct_entry *e = bpf_map_lookup_elem(map, t);

	return e && e->lifetime >= now && e->policy_rev == rev;
}

/* An ICMP error quotes the packet that caused it. It is RELATED when that quoted packet belongs
 * to a tracked flow of this endpoint, whichever end of the flow sent it. The endpoint must be in
 * the quote where the error's direction puts it: an error delivered to the endpoint (ingress)
 * is about a packet the endpoint sent, so the quote's source is the endpoint; an error the
 * endpoint sends (egress) is about a packet it received, so the quote's destination is it.
 * Without that, any peer could pass errors about other endpoints' flows. The flow's cached verdict
 * must hold at the current revision `rev`: an error about a flow policy may now deny is judged by
 * policy like a new packet. */
static __always_inline int ct_lookup_related4(struct __sk_buff *skb, const struct pkt *p, __u8 dir, __u32 now,
					      __u32 rev)
{
	__u32 inner_off = p->l4_off + sizeof(struct icmphdr);
	struct ipv4_ct_tuple t;
	__be16 sport = 0, dport = 0;
	struct iphdr inner;
	void *map;

	if (bpf_skb_load_bytes(skb, inner_off, &inner, sizeof(inner)) < 0)
		return CT_NEW;
	if (inner.version != 4 || inner.ihl < 5)
		return CT_NEW;
	if (dir == TUPLE_F_IN ? inner.saddr != p->daddr : inner.daddr != p->saddr)
		return CT_NEW;
	if (load_l4_ports(skb, inner_off + inner.ihl * 4, inner.protocol, &sport, &dport, NULL) < 0)
		return CT_NEW;
	map = ct_map_for(inner.protocol);

	ct_tuple_forward(&t, inner.saddr, inner.daddr, sport, dport, inner.protocol, dir ^ 1);
	if (ct_entry_current(map, &t, now, rev))
		return CT_RELATED;
	ct_tuple_reverse(&t, inner.saddr, inner.daddr, sport, dport, inner.protocol, dir);
	if (ct_entry_current(map, &t, now, rev))
		return CT_RELATED;
	return CT_NEW;
}

/* A flow policy allowed at revision `rev`, judged on the policy key port `policy_dport`. */
static __always_inline int ct_create4(void *map, const struct pkt *p, __u8 dir, __u32 src_sec_id, __u32 now,
				      __u32 rev, __be16 policy_dport)
{
	struct ct_entry e = {
		.packets = 1,
		.bytes = p->len,
		.src_sec_id = src_sec_id,
		.policy_rev = rev,
		.policy_dport = policy_dport,
	};
	struct ipv4_ct_tuple t;

	ct_tuple_forward(&t, p->saddr, p->daddr, p->sport, p->dport, p->protocol, dir);
	ct_update_state(&e, p, 0, now);
	if (bpf_map_update_elem(map, &t, &e, BPF_ANY) < 0)
		return -DROP_CT_CREATE_FAILED;
	return 0;
}

#endif
