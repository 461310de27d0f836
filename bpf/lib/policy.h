/* Policy decision for one flow against an endpoint's policy map. */
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

/* The verdict of a policy entry that matched: a deny drops (181), an allow that requires
 * authentication drops (189, nothing here can authenticate), any other allow passes. */
static __always_inline int policy_entry_verdict(const struct policy_entry *e, __u32 *cookie)
{
	*cookie = e->cookie;
	if (e->flags & POLICY_FLAG_DENY)
		return DROP_POLICY_DENY;
	if (e->auth_type)
		return DROP_POLICY_AUTH_REQUIRED;
	return 0;
}

/* Two lookups, as upstream: one with the peer's identity and one with the wildcard identity 0.
 * The longer protocol/port prefix wins, the identity entry on a tie. A deny from either lookup
 * wins: the agent marks every allow entry covered by a deny of the same identity as deny, so a
 * lookup that matches a deny anywhere returns a deny. `dport` is the policy key's port
 * (policy_dport). Returns 0 (allow), DROP_POLICY, DROP_POLICY_DENY or DROP_POLICY_AUTH_REQUIRED;
 * *match gets the upstream match type and *cookie the deciding entry's rule cookie (0: none). */
static __always_inline int policy_check(void *policy_map, __u32 peer_id, __u8 egress, __u8 protocol,
					__be16 dport, __u8 *match, __u32 *cookie)
{
	struct policy_key key = {
		.prefixlen = POLICY_FULL_PREFIX,
		.sec_label = peer_id,
		.egress = egress,
		.protocol = protocol,
		.dport = dport,
	};
	struct policy_entry *by_id, *any;

	by_id = bpf_map_lookup_elem(policy_map, &key);
	key.sec_label = 0;
	any = bpf_map_lookup_elem(policy_map, &key);

	*cookie = 0;
	if (by_id && (by_id->flags & POLICY_FLAG_DENY)) {
		*match = policy_match_type(by_id, 1);
		return policy_entry_verdict(by_id, cookie);
	}
	if (any && (any->flags & POLICY_FLAG_DENY)) {
		*match = policy_match_type(any, 0);
		return policy_entry_verdict(any, cookie);
	}
	if (by_id && (!any || policy_prefix_len(by_id) >= policy_prefix_len(any))) {
		*match = policy_match_type(by_id, 1);
		return policy_entry_verdict(by_id, cookie);
	}
	if (any) {
		*match = policy_match_type(any, 0);
		return policy_entry_verdict(any, cookie);
	}
	*match = POLICY_MATCH_NONE;
	return DROP_POLICY;
}

/* The revision the agent last published; 0 when the map cannot be read (never in practice). */
static __always_inline __u32 policy_revision(void)
{
	__u32 *rev = bpf_map_lookup_elem(&cilium_policy_revision, &(__u32){ 0 });

	return rev ? *rev : 0;
}

#endif
