/* Policy decision for one new flow against an endpoint's policy map. */
#ifndef CILIUM_TS_POLICY_H
#define CILIUM_TS_POLICY_H

#include "common.h"
#include "maps.h"

/* Upstream policy match types (policy-verdict events). */
#define POLICY_MATCH_NONE 0
#define POLICY_MATCH_L3_ONLY 1
#define POLICY_MATCH_L3_L4 2
#define POLICY_MATCH_L4_ONLY 3
#define POLICY_MATCH_ALL 4
#define POLICY_MATCH_L3_PROTO 5
#define POLICY_MATCH_PROTO_ONLY 6

#define PROTO_PREFIX_BITS 8

static __always_inline __u8 policy_prefix_len(const struct policy_entry *e)
{
	return e->flags >> POLICY_PREFIX_SHIFT;
}

static __always_inline __u8 policy_match_type(const struct policy_entry *e, int by_identity)
{
	__u8 len = policy_prefix_len(e);

	if (by_identity)
		return len == 0 ? POLICY_MATCH_L3_ONLY : len <= PROTO_PREFIX_BITS ? POLICY_MATCH_L3_PROTO : POLICY_MATCH_L3_L4;
	return len == 0 ? POLICY_MATCH_ALL : len <= PROTO_PREFIX_BITS ? POLICY_MATCH_PROTO_ONLY : POLICY_MATCH_L4_ONLY;
}

/* The port the policy key carries: the L4 destination port, or for ICMP the type in the first
 * byte so an entry with an 8-bit port prefix matches every code of that type. */
static __always_inline __be16 policy_dport(const struct pkt *p)
{
	if (p->protocol == IPPROTO_ICMP)
		return bpf_htons((__u16)p->icmp_type << 8);
	return p->dport;
}

/* Two lookups, as upstream: one with the peer's identity and one with the wildcard identity 0.
 * The longer protocol/port prefix wins, the identity entry on a tie. A deny from either lookup
 * wins: the agent marks every allow entry covered by a deny of the same identity as deny, so a
 * lookup that matches a deny anywhere returns a deny. Returns 0 (allow), DROP_POLICY or
 * DROP_POLICY_DENY; *match gets the upstream match type. */
static __always_inline int policy_check(void *policy_map, __u32 peer_id, __u8 egress,
					const struct pkt *p, __u8 *match)
{
	struct policy_key key = {
		.prefixlen = POLICY_FULL_PREFIX,
		.sec_label = peer_id,
		.egress = egress,
		.protocol = p->protocol,
		.dport = policy_dport(p),
	};
	struct policy_entry *by_id, *any;

	by_id = bpf_map_lookup_elem(policy_map, &key);
	key.sec_label = 0;
	any = bpf_map_lookup_elem(policy_map, &key);

	if (by_id && (by_id->flags & POLICY_FLAG_DENY)) {
		*match = policy_match_type(by_id, 1);
		return DROP_POLICY_DENY;
	}
	if (any && (any->flags & POLICY_FLAG_DENY)) {
		*match = policy_match_type(any, 0);
		return DROP_POLICY_DENY;
	}
	if (by_id && (!any || policy_prefix_len(by_id) >= policy_prefix_len(any))) {
		*match = policy_match_type(by_id, 1);
		return 0;
	}
	if (any) {
		*match = policy_match_type(any, 0);
		return 0;
	}
	*match = POLICY_MATCH_NONE;
	return DROP_POLICY;
}

#endif
