/* Programs on cilium_vxlan, the node's collect_md VXLAN device (tunnel mode). cil_from_overlay (tc
 * ingress) sees what other nodes sent through the tunnel, already decapsulated: the source
 * identity is the VNI, never the inner source address (any node could write any address there).
 * A packet for a local endpoint goes straight to the endpoint's veth with that identity in the
 * mark, where cil_to_container judges it by the endpoint's ingress policy; one for this node
 * itself goes up the stack; anything else is dropped. Both directions emit trace events at the
 * tunnel (from-overlay, to-overlay) as upstream's. */
#define BPF_FILE_ID FILE_BPF_OVERLAY
#include <linux/ip.h>
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/notify.h"
#include "lib/eps.h"
#include "lib/encap.h"
#include "lib/identity.h"

#define DROP_TTL_EXCEEDED 196
#define PACKET_HOST 0

#define IP_TTL_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, ttl))
#define IP_CSUM_OFF (ETH_HLEN + __builtin_offsetof(struct iphdr, check))

/* Tunnel traces follow the other trace events (new flows, not a stream's every packet; upstream's
 * default monitor aggregation does the same with its conntrack): a TCP segment is traced when it
 * opens or closes its connection (SYN, FIN or RST), and so is every other packet. Without
 * conntrack here the flags are what tells an open stream's segments apart. */
#define OVERLAY_TRACED_TCP_FLAGS (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST)

static __always_inline void overlay_trace(struct __sk_buff *skb, const struct iphdr *ip, __u32 src_label, __u8 obs_point,
					  __u8 dir)
{
	__u8 flags;

	if (ip->protocol == IPPROTO_TCP) {
		if (bpf_ntohs(ip->frag_off) & IP_FRAG_OFFSET_MASK)
			return;
		if (skb_read(skb, ETH_HLEN + ip->ihl * 4 + 13, &flags, sizeof(flags)) < 0 ||
		    !(flags & OVERLAY_TRACED_TCP_FLAGS))
			return;
	}
	send_trace_notify(skb, 0, src_label, 0, obs_point, dir, 0);
}

static __always_inline int overlay_drop(struct __sk_buff *skb, __u32 src_label, __u8 reason, __u8 dir, __u16 line)
{
	metrics_count(reason, dir, line, skb->len);
	send_drop_notify(skb, 0, src_label, 0, reason, dir, line, 0);
	return TC_ACT_SHOT;
}

/* Rewrites the frame as the node's router would forward it to the endpoint: the endpoint's MAC as
 * destination, its host-side veth as source, TTL one less. */
static __always_inline int l3_forward_to(struct __sk_buff *skb, const struct endpoint_info *ep, const struct iphdr *ip)
{
	__be16 old_word = *(const __be16 *)&ip->ttl;
	__u8 ttl = ip->ttl - 1;
	__be16 new_word;

	if (ip->ttl <= 1)
		return -DROP_TTL_EXCEEDED;
	__builtin_memcpy(&new_word, &old_word, sizeof(new_word));
	*(__u8 *)&new_word = ttl;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_word, new_word, sizeof(new_word)) < 0 ||
	    bpf_skb_store_bytes(skb, IP_TTL_OFF, &ttl, sizeof(ttl), 0) < 0 ||
	    bpf_skb_store_bytes(skb, 0, &ep->mac, 6, 0) < 0 ||
	    bpf_skb_store_bytes(skb, 6, &ep->node_mac, 6, 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

static __always_inline int from_overlay_ipv4(struct __sk_buff *skb, __u32 *identity, __u16 *line)
{
	struct bpf_tunnel_key key = {};
	struct remote_endpoint_info *info;
	struct endpoint_info *ep;
	struct iphdr ip;
	int ret;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0) {
		*line = __LINE__;
		return -DROP_NO_TUNNEL_KEY;
	}
	*identity = key.tunnel_id;
	/* Senders present their host as remote-node (encap.h), so a VNI claiming host is forged; 0
	 * names no identity, and taking the source address instead is what the VNI is there to avoid. */
	if (*identity == 0 || *identity == HOST_ID) {
		*line = __LINE__;
		return -DROP_INVALID_IDENTITY;
	}
	if (skb_read(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4 || ip.ihl < 5) {
		*line = __LINE__;
		return -DROP_INVALID;
	}
	/* The decapsulated packet as it arrived, under the sender's identity (upstream's from-overlay
	 * trace); the destination's is not known yet. */
	overlay_trace(skb, &ip, *identity, TRACE_FROM_OVERLAY, METRIC_INGRESS);

	ep = lookup_ip4_endpoint(ip.daddr);
	if (ep) {
		ret = l3_forward_to(skb, ep, &ip);
		if (ret < 0) {
			*line = __LINE__;
			return ret;
		}
		set_identity_mark(skb, *identity);
		metrics_count(0, METRIC_INGRESS, 0, skb->len);
		return bpf_redirect(ep->ifindex, 0);
	}

	/* Not an endpoint: only the node's own addresses (host rows of the ipcache) are delivered, up
	 * the stack; the tunnel does not carry traffic for the node to route on. */
	info = ipcache_lookup4(ip.daddr);
	if (!info || info->sec_identity != HOST_ID) {
		*line = __LINE__;
		return -DROP_UNROUTABLE;
	}
	/* The inner frame is addressed to the sending side's MAC: make the stack take it. */
	if (bpf_skb_change_type(skb, PACKET_HOST) < 0) {
		*line = __LINE__;
		return -DROP_WRITE_ERROR;
	}
	skb->mark = 0;
	metrics_count(0, METRIC_INGRESS, 0, skb->len);
	return TC_ACT_OK;
}

SEC("tc")
int cil_from_overlay(struct __sk_buff *skb)
{
	__u32 identity = 0;
	__u16 line = __LINE__;
	int ret;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return overlay_drop(skb, 0, DROP_UNKNOWN_L3, METRIC_INGRESS, line);
	ret = from_overlay_ipv4(skb, &identity, &line);
	if (ret < 0)
		return overlay_drop(skb, identity, -ret, METRIC_INGRESS, line);
	return ret;
}

static __always_inline void to_overlay_trace(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct iphdr ip = {};

	if (skb->protocol != bpf_htons(ETH_P_IP) || skb_read(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4 ||
	    ip.ihl < 5)
		return;
	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		key.tunnel_id = 0;
	overlay_trace(skb, &ip, key.tunnel_id, TRACE_TO_OVERLAY, METRIC_EGRESS);
}

/* Everything here was encapsulated by a program that decided on it first (cil_from_container,
 * cil_from_host): counted and traced as it enters the tunnel (upstream's to-overlay), the inner
 * packet under the identity its sender put in the VNI (encap.h). The device encapsulates after
 * this program, so the tunnel key is still only metadata here. */
SEC("tc")
int cil_to_overlay(struct __sk_buff *skb)
{
	metrics_count(0, METRIC_EGRESS, 0, skb->len);
	to_overlay_trace(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
