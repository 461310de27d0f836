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

/* The running kernel's tick rate, which libbpf reads from its config at load. */
extern const unsigned int CONFIG_HZ __kconfig;

/* Seconds since boot on the jiffies clock, as upstream's bpf_mono_now: one load (the verifier
 * inlines bpf_jiffies64), where bpf_ktime_get_ns reads the clocksource, ~50 ns of an established
 * packet in a VM. jiffies start at INITIAL_JIFFIES, 300 s of ticks before the 32-bit counter
 * wraps, when the tick starts at boot: this clock lags CLOCK_MONOTONIC by that fraction of a
 * second and is never ahead of it. */
static __always_inline __u32 ct_now(void)
{
	__u64 initial = (__u32)(-300 * (int)CONFIG_HZ);

	return (bpf_jiffies64() - initial) / CONFIG_HZ;
}

/* The entry of `t` in its protocol's map. Each map is named at its own lookup, and the empty asm
 * keeps clang from merging the two into one lookup in a map chosen at run time: the verifier
 * inlines a lookup only in a map it knows, and any other costs an indirect call (a retpoline
 * here) on every packet. */
static __always_inline struct ct_entry *ct_map_lookup(const struct ipv4_ct_tuple *t)
{
	struct ct_entry *e;

	if (t->nexthdr == IPPROTO_TCP)
		return bpf_map_lookup_elem(&cilium_ct4_global, t);
	e = bpf_map_lookup_elem(&cilium_ct_any4_global, t);
	asm volatile("" : "+r"(e));
	return e;
}

/* Stores `e` for `t` in its protocol's map (see ct_map_lookup). */
static __always_inline int ct_map_update(const struct ipv4_ct_tuple *t, const struct ct_entry *e)
{
	long ret;

	if (t->nexthdr == IPPROTO_TCP)
		return bpf_map_update_elem(&cilium_ct4_global, t, e, BPF_ANY);
	ret = bpf_map_update_elem(&cilium_ct_any4_global, t, e, BPF_ANY);
	asm volatile("" : "+r"(ret));
	return ret;
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
static __always_inline int ct_lookup4(const struct pkt *p, __u8 dir, __u32 now, struct ct_entry **entry)
{
	struct ipv4_ct_tuple t;
	struct ct_entry *e;

	ct_tuple_forward(&t, p->saddr, p->daddr, p->sport, p->dport, p->protocol, dir);
	e = ct_map_lookup(&t);
	if (e && e->lifetime >= now) {
		if (ct_is_pure_syn(p) && (e->flags & (CT_F_RX_CLOSING | CT_F_TX_CLOSING)))
			return CT_NEW;
		*entry = e;
		return CT_ESTABLISHED;
	}

	ct_tuple_reverse(&t, p->saddr, p->daddr, p->sport, p->dport, p->protocol, dir ^ 1);
	e = ct_map_lookup(&t);
	if (e && e->lifetime >= now) {
		*entry = e;
		return CT_REPLY;
	}
	return CT_NEW;
}

/* The verdict cached in the entry holds for a packet on the veth `ifindex`: it was allowed at
 * revision `rev` (nothing that can change a verdict or an endpoint was written since) for the
 * endpoint on that veth. */
static __always_inline int ct_verdict_holds(const struct ct_entry *e, __u32 rev, __u32 ifindex)
{
	return e->policy_rev == rev && e->ifindex == ifindex;
}

/* Caches in the entry that its flow is allowed at `rev` for the endpoint on `ifindex`. */
static __always_inline void ct_set_verdict(struct ct_entry *e, __u32 rev, __u32 ifindex)
{
	if (e->policy_rev != rev)
		e->policy_rev = rev;
	if (e->ifindex != ifindex)
		e->ifindex = ifindex;
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
static __always_inline int ct_entry_current(const struct ipv4_ct_tuple *t, __u32 now, __u32 rev)
{
	struct ct_entry *e = ct_map_lookup(t);

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

	if (bpf_skb_load_bytes(skb, inner_off, &inner, sizeof(inner)) < 0)
		return CT_NEW;
	if (inner.version != 4 || inner.ihl < 5)
		return CT_NEW;
	if (dir == TUPLE_F_IN ? inner.saddr != p->daddr : inner.daddr != p->saddr)
		return CT_NEW;
	if (load_l4_ports(skb, inner_off + inner.ihl * 4, inner.protocol, &sport, &dport, NULL) < 0)
		return CT_NEW;

	ct_tuple_forward(&t, inner.saddr, inner.daddr, sport, dport, inner.protocol, dir ^ 1);
	if (ct_entry_current(&t, now, rev))
		return CT_RELATED;
	ct_tuple_reverse(&t, inner.saddr, inner.daddr, sport, dport, inner.protocol, dir);
	if (ct_entry_current(&t, now, rev))
		return CT_RELATED;
	return CT_NEW;
}

/* A flow policy allowed at revision `rev` for the endpoint on `ifindex`, judged on the policy key
 * port `policy_dport`. */
static __always_inline int ct_create4(const struct pkt *p, __u8 dir, __u32 src_sec_id, __u32 now,
				      __u32 rev, __u32 ifindex, __be16 policy_dport)
{
	struct ct_entry e = {
		.packets = 1,
		.bytes = p->len,
		.src_sec_id = src_sec_id,
		.policy_rev = rev,
		.policy_dport = policy_dport,
		.ifindex = ifindex,
	};
	struct ipv4_ct_tuple t;

	ct_tuple_forward(&t, p->saddr, p->daddr, p->sport, p->dport, p->protocol, dir);
	ct_update_state(&e, p, 0, now);
	if (ct_map_update(&t, &e) < 0)
		return -DROP_CT_CREATE_FAILED;
	return 0;
}

#endif
