/* cil_from_host, on tc egress of cilium_host: what the node itself routes towards other nodes' pod
 * CIDRs (the routes syncNodeRoutes makes point at cilium_host in tunnel mode). In tunnel mode it
 * leaves through cilium_vxlan to the node the ipcache names, as host (presented to the receiver as
 * remote-node) when it comes from one of the node's own addresses and as world otherwise: the
 * source address of what the node forwards is not proof of a pod's identity. A destination no
 * tunnel reaches is dropped (160). In native mode nothing is routed here; it passes. */
#define BPF_FILE_ID FILE_BPF_HOST
#include <linux/ip.h>
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/parse.h"
#include "lib/notify.h"
#include "lib/eps.h"
#include "lib/encap.h"

static __always_inline int host_drop(struct __sk_buff *skb, __u32 src_label, __u8 reason, __u16 line)
{
	metrics_count(reason, METRIC_EGRESS, line, skb->len);
	send_drop_notify(skb, 0, src_label, 0, reason, METRIC_EGRESS, line, 0);
	return TC_ACT_SHOT;
}

SEC("tc")
int cil_from_host(struct __sk_buff *skb)
{
	const struct node_config *cfg = node_config();
	struct remote_endpoint_info *src;
	__u32 identity = WORLD_ID;
	__be32 tunnel;
	struct iphdr ip;
	int ret;

	if (!cfg || cfg->routing_mode != ROUTING_MODE_TUNNEL) {
		metrics_count(0, METRIC_EGRESS, 0, skb->len);
		return TC_ACT_OK;
	}
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return host_drop(skb, 0, DROP_UNKNOWN_L3, __LINE__);
	if (skb_read(skb, ETH_HLEN, &ip, sizeof(ip)) < 0 || ip.version != 4)
		return host_drop(skb, 0, DROP_INVALID, __LINE__);
	src = ipcache_lookup4(ip.saddr);
	if (src && src->sec_identity == HOST_ID)
		identity = HOST_ID;
	tunnel = tunnel_endpoint_of(cfg, ipcache_lookup4(ip.daddr));
	if (!tunnel)
		return host_drop(skb, identity, DROP_NO_TUNNEL_ENDPOINT, __LINE__);
	ret = encap_and_redirect(skb, cfg, tunnel, identity);
	if (ret < 0)
		return host_drop(skb, identity, -ret, __LINE__);
	metrics_count(0, METRIC_EGRESS, 0, skb->len);
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
