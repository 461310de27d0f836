/* Endpoint programs on the host side of a pod's veth. cil_from_container (tc ingress) sees what
 * the pod sends and enforces the pod's egress policy; cil_to_container (tc egress) sees what is
 * delivered to the pod and enforces its ingress policy. The endpoint is found by the pod's IP in
 * cilium_lxc and must sit on the veth the program runs on, so one object serves every endpoint.
 * In tunnel mode what the pod sends to an address behind another node leaves encapsulated, after
 * its egress policy passed; what is delivered to the pod may carry its source identity in the mark
 * (cil_from_overlay took it from the VNI), which then decides instead of the source address. */
#define BPF_FILE_ID FILE_BPF_LXC
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/ct.h"
#include "lib/policy.h"
#include "lib/notify.h"
#include "lib/eps.h"
#include "lib/encap.h"
#include "lib/identity.h"

/* Layouts that no map definition names in full (the event records; the inner policy map's key and
 * value are in maps.h) are anchored here so they appear in BTF, where datapath/maps checks its
 * codecs. */
struct layout_anchor {
	struct drop_notify drop_notify;
	struct trace_notify trace_notify;
	struct policy_verdict_notify policy_verdict_notify;
};
struct layout_anchor btf_layout_anchor;

struct verdict_ctx {
	struct __sk_buff *skb;
	__u16 ep_id;
	__u8 dir;
	__u32 src_label;
	__u32 dst_label;
	__u32 cookie;
};

static __always_inline int drop_packet(const struct verdict_ctx *v, __u8 reason, __u16 line)
{
	metrics_count(reason, v->dir, line, v->skb->len);
	send_drop_notify(v->skb, v->ep_id, v->src_label, v->dst_label, reason, v->dir, line, v->cookie);
	return TC_ACT_SHOT;
}

static __always_inline int forward_packet(const struct verdict_ctx *v)
{
	metrics_count(0, v->dir, 0, v->skb->len);
	return TC_ACT_OK;
}

/* What passed the policy of the pod that sent it: in tunnel mode to an address behind another
 * node it leaves through cilium_vxlan with the pod's identity as VNI; otherwise the kernel routes
 * it. Pod-to-pod on this node never reaches the tunnel: a row pointing at this node is local. `ep`
 * is the sending endpoint, or NULL when the packet's flow vouched for it without a lookup. */
static __always_inline int forward_from_container(struct verdict_ctx *v, const struct endpoint_info *ep,
						  const struct pkt *p)
{
	const struct node_config *cfg = node_config();
	__be32 tunnel = 0;
	int ret;

	if (cfg && cfg->routing_mode == ROUTING_MODE_TUNNEL)
		tunnel = tunnel_endpoint_of(cfg, ipcache_lookup4(p->daddr));
	if (!tunnel)
		return forward_packet(v);
	if (!ep)
		ep = lookup_ip4_endpoint(p->saddr);
	if (!ep)
		return drop_packet(v, DROP_INVALID_SIP, __LINE__);
	v->ep_id = ep->lxc_id;
	ret = encap_and_redirect(v->skb, cfg, tunnel, ep->sec_id);
	if (ret < 0)
		return drop_packet(v, -ret, __LINE__);
	metrics_count(0, v->dir, 0, v->skb->len);
	return ret;
}

/* A packet of a tracked flow that passes: counted on its entry, its first fragment's ports kept
 * for the later ones, and forwarded. */
static __always_inline int pass_tracked(struct verdict_ctx *v, const struct endpoint_info *ep, const struct pkt *p,
					struct ct_entry *entry, int state, __u32 now, int egress)
{
	ct_account(entry, p, state == CT_REPLY, now);
	frag_record(p);
	return egress ? forward_from_container(v, ep, p) : forward_packet(v);
}

/* Local endpoints are authoritative for their own identity; everything else comes from the
 * ipcache, and what it does not know is world. */
static __always_inline __u32 peer_identity(__be32 addr)
{
	struct endpoint_info *ep = lookup_ip4_endpoint(addr);
	struct remote_endpoint_info *info;

	if (ep)
		return ep->sec_id;
	info = ipcache_lookup4(addr);
	return info ? info->sec_identity : WORLD_ID;
}

/* The identity of the other side of the packet: its destination's when the pod sends, else its
 * source's, which a packet that came through the tunnel carries in the mark (from the VNI): then
 * the source address, which any node could have put there, says nothing. */
static __always_inline __u32 packet_peer(const struct __sk_buff *skb, const struct pkt *p, int egress)
{
	__u32 marked;

	if (egress)
		return peer_identity(p->daddr);
	marked = identity_from_mark(skb);
	return marked ? marked : peer_identity(p->saddr);
}

/* Fills the event labels of `v`: the endpoint on one side, the peer on the other. */
static __always_inline void set_labels(struct verdict_ctx *v, const struct endpoint_info *ep, __u32 peer, int egress)
{
	v->src_label = egress ? ep->sec_id : peer;
	v->dst_label = egress ? peer : ep->sec_id;
}

/* A tracked flow whose cached verdict is older than the current policy revision: policy decides
 * again, in the direction that opened the flow (a reply is judged as its flow, so a reply of a
 * flow whose opening direction is now denied dies too). Denied, the packet drops with a
 * policy-verdict and a drop event. */
static __always_inline int recheck_flow(struct verdict_ctx *v, const struct endpoint_info *ep,
					const struct pkt *p, const struct ct_entry *e, int egress, int reply,
					__u16 *line)
{
	__u8 flow_egress = reply ? !egress : egress;
	__u32 peer = packet_peer(v->skb, p, egress);
	void *policy_map;
	__u8 match = 0;
	int ret;

	set_labels(v, ep, peer, egress);
	policy_map = bpf_map_lookup_elem(&cilium_policy_maps, &(__u32){ v->ep_id });
	if (!policy_map) {
		*line = __LINE__;
		return DROP_EP_NOT_READY;
	}
	ret = policy_check(policy_map, peer, flow_egress, p->protocol, e->policy_dport, &match, &v->cookie);
	if (ret) {
		send_policy_verdict_notify(v->skb, v->ep_id, v->src_label, v->dst_label,
					   flow_egress ? METRIC_EGRESS : METRIC_INGRESS, ret, match, v->cookie);
		*line = __LINE__;
		return ret;
	}
	return 0;
}

static __always_inline int handle_ipv4(struct __sk_buff *skb, int egress)
{
	struct verdict_ctx v = { .skb = skb, .dir = egress ? METRIC_EGRESS : METRIC_INGRESS };
	__u8 ct_dir = egress ? TUPLE_F_OUT : TUPLE_F_IN;
	struct ct_entry *entry = NULL;
	struct endpoint_info *ep;
	struct pkt p = {};
	void *policy_map;
	__u32 now, peer, rev;
	__u16 line = 0;
	__u8 match = 0;
	int state, ret;

	ret = parse_ipv4(skb, &p);
	if (ret < 0)
		return drop_packet(&v, -ret, __LINE__);

	now = ct_now();
	rev = policy_revision();
	state = ct_lookup4(&p, ct_dir, now, &entry);
	/* Established or reply with a verdict that holds: nothing was written since that could
	 * change it or the endpoint on this veth, so neither policy nor the endpoint is looked up. */
	if (entry && ct_verdict_holds(entry, rev, skb->ifindex))
		return pass_tracked(&v, NULL, &p, entry, state, now, egress);

	ep = lookup_ip4_endpoint(egress ? p.saddr : p.daddr);
	/* The endpoint is found by address and must sit on the veth this program runs on: a pod
	 * may only send from its own address (132), and only what is addressed to the pod on this
	 * veth is delivered to it (151): not an address no endpoint owns (an old address after a
	 * move, a lost entry, broadcast), nor one owned by an endpoint on another veth, which would
	 * be judged by the wrong endpoint's policy. A veth whose endpoint was removed so drops
	 * everything while the programs stay on it. */
	if (!ep || ep->ifindex != skb->ifindex)
		return drop_packet(&v, egress ? DROP_INVALID_SIP : DROP_UNROUTABLE, __LINE__);
	v.ep_id = ep->lxc_id;

	if (entry) {
		/* The verdict cached in the entry is older than the policy revision: policy decides
		 * again. */
		if (entry->policy_rev != rev) {
			ret = recheck_flow(&v, ep, &p, entry, egress, state == CT_REPLY, &line);
			if (ret)
				return drop_packet(&v, ret, line);
		}
		ct_set_verdict(entry, rev, ep->ifindex);
		return pass_tracked(&v, ep, &p, entry, state, now, egress);
	}

	peer = packet_peer(skb, &p, egress);
	set_labels(&v, ep, peer, egress);

	/* A later fragment passes only on the entry its first fragment made or found: one never
	 * starts a flow, so it cannot plant an entry for a tuple its first fragment was denied. */
	if (p.is_fragment)
		return drop_packet(&v, DROP_FRAG_NOT_FOUND, __LINE__);

	if (p.protocol == IPPROTO_ICMP && icmp_is_error(p.icmp_type) &&
	    ct_lookup_related4(skb, &p, ct_dir, now, rev) == CT_RELATED) {
		send_trace_notify(skb, v.ep_id, v.src_label, v.dst_label,
				  egress ? TRACE_FROM_LXC : TRACE_TO_LXC, v.dir, CT_RELATED);
		return egress ? forward_from_container(&v, ep, &p) : forward_packet(&v);
	}

	policy_map = bpf_map_lookup_elem(&cilium_policy_maps, &(__u32){ v.ep_id });
	if (!policy_map)
		return drop_packet(&v, DROP_EP_NOT_READY, __LINE__);
	ret = policy_check(policy_map, peer, egress, p.protocol, policy_dport(&p), &match, &v.cookie);
	send_policy_verdict_notify(skb, v.ep_id, v.src_label, v.dst_label, v.dir, ret, match, v.cookie);
	if (ret)
		return drop_packet(&v, ret, __LINE__);

	if (ct_create4(&p, ct_dir, v.src_label, now, rev, ep->ifindex, policy_dport(&p)) < 0)
		return drop_packet(&v, DROP_CT_CREATE_FAILED, __LINE__);
	frag_record(&p);
	send_trace_notify(skb, v.ep_id, v.src_label, v.dst_label,
			  egress ? TRACE_FROM_LXC : TRACE_TO_LXC, v.dir, CT_NEW);
	return egress ? forward_from_container(&v, ep, &p) : forward_packet(&v);
}

static __always_inline int handle(struct __sk_buff *skb, int egress)
{
	struct verdict_ctx v = { .skb = skb, .dir = egress ? METRIC_EGRESS : METRIC_INGRESS };

	if (skb->protocol == bpf_htons(ETH_P_IP))
		return handle_ipv4(skb, egress);
	if (skb->protocol == bpf_htons(ETH_P_ARP))
		return forward_packet(&v);
	return drop_packet(&v, DROP_UNKNOWN_L3, __LINE__);
}

SEC("tc")
int cil_from_container(struct __sk_buff *skb)
{
	return handle(skb, 1);
}

SEC("tc")
int cil_to_container(struct __sk_buff *skb)
{
	return handle(skb, 0);
}

char LICENSE[] SEC("license") = "GPL";
