/* Lookups of an IPv4 address in cilium_lxc (local endpoints) and cilium_ipcache_v2 (everything the
 * agent knows an identity for), as upstream lib/eps.h. */
#ifndef CILIUM_TS_EPS_H
#define CILIUM_TS_EPS_H

#include "common.h"
#include "maps.h"

static __always_inline struct endpoint_info *lookup_ip4_endpoint(__be32 addr)
{
	struct endpoint_key key = { .family = ENDPOINT_KEY_IPV4 };

	__builtin_memcpy(key.ip, &addr, sizeof(addr));
	return bpf_map_lookup_elem(&cilium_lxc, &key);
}

static __always_inline struct remote_endpoint_info *ipcache_lookup4(__be32 addr)
{
	struct ipcache_key key = {
		.prefixlen = IPCACHE_PREFIX_BASE + 32,
		.family = ENDPOINT_KEY_IPV4,
	};

	__builtin_memcpy(key.ip, &addr, sizeof(addr));
	return bpf_map_lookup_elem(&cilium_ipcache_v2, &key);
}

#endif
