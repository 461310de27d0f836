/* A source identity carried in skb->mark between programs of this node (upstream encoding, see
 * MARK_MAGIC_IDENTITY in common.h). */
#ifndef CILIUM_TS_IDENTITY_H
#define CILIUM_TS_IDENTITY_H

#include "common.h"

static __always_inline void set_identity_mark(struct __sk_buff *skb, __u32 identity)
{
	skb->mark = MARK_MAGIC_IDENTITY | ((identity & 0xFFFF) << 16) | ((identity >> 16) & 0xFF);
}

/* The identity a program before this one put in the mark; 0 when the mark carries none. */
static __always_inline __u32 identity_from_mark(const struct __sk_buff *skb)
{
	if ((skb->mark & MARK_MAGIC_HOST_MASK) != MARK_MAGIC_IDENTITY)
		return 0;
	return ((skb->mark & 0xFF) << 16) | (skb->mark >> 16);
}

#endif
