/* The node's configuration and VXLAN encapsulation (upstream lib/encap.h): a packet
 * for an address behind another node leaves through cilium_vxlan with the source security
 * identity as VNI, so the receiving node knows the sender without trusting its address. */
#ifndef CILIUM_TS_ENCAP_H
#define CILIUM_TS_ENCAP_H

#include "common.h"
#include "maps.h"

static __always_inline const struct node_config *node_config(void)
{
	return bpf_map_lookup_elem(&cilium_node_config, &(__u32){ 0 });
}

/* The row's tunnel endpoint when this node tunnels and the row is behind another node; 0 when the
 * packet is routed as it is (a row pointing at this node itself included). */
static __always_inline __be32 tunnel_endpoint_of(const struct node_config *cfg, const struct remote_endpoint_info *info)
{
	__be32 ep = 0;

	if (!cfg || cfg->routing_mode != ROUTING_MODE_TUNNEL || !info ||
	    !(info->flags & REMOTE_ENDPOINT_F_HAS_TUNNEL) || (info->flags & REMOTE_ENDPOINT_F_SKIP_TUNNEL))
		return 0;
	__builtin_memcpy(&ep, info->tunnel_endpoint, sizeof(ep));
	return ep == cfg->node_ip ? 0 : ep;
}

/* Sets the tunnel metadata (VNI = seclabel, remote = tunnel_endpoint) and redirects the packet to
 * cilium_vxlan, whose collect_md device encapsulates it. Returns the tc verdict, or a negative
 * drop reason. The node's own traffic is presented as remote-node to the receiver (upstream), so
 * a VNI never claims host. */
static __always_inline int encap_and_redirect(struct __sk_buff *skb, const struct node_config *cfg,
					      __be32 tunnel_endpoint, __u32 seclabel)
{
	struct bpf_tunnel_key key = {};

	if (!cfg->overlay_ifindex)
		return -DROP_NO_TUNNEL_ENDPOINT;
	if (seclabel == HOST_ID)
		seclabel = REMOTE_NODE_ID;
	key.tunnel_id = seclabel;
	key.remote_ipv4 = bpf_ntohl(tunnel_endpoint);
	key.tunnel_ttl = 64;
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return -DROP_WRITE_ERROR;
	return bpf_redirect(cfg->overlay_ifindex, 0);
}

#endif
