/* Event records on the cilium_events ring buffer and the cilium_metrics counters. Record
 * layouts are documented in bpf/README.md and decoded by datapath/maps/events.ts. */
#ifndef CILIUM_TS_NOTIFY_H
#define CILIUM_TS_NOTIFY_H

#include "common.h"
#include "maps.h"

/* Upstream monitor message types. */
#define CILIUM_NOTIFY_DROP 1
#define CILIUM_NOTIFY_TRACE 4
#define CILIUM_NOTIFY_POLICY_VERDICT 5

#define NOTIFY_VERSION 1
/* Bytes of the packet copied from its IPv4 header on: room for IPv4 and TCP with options. */
#define NOTIFY_CAPTURE_LEN 64

struct notify_common {
	__u8 type;
	__u8 subtype;
	__u16 source;
	__u32 len_orig;
	__u16 len_cap;
	__u8 version;
	__u8 dir;
	__u32 ifindex;
};

/* What every record starts with; the type-specific 8 bytes and the capture follow. */
struct notify_head {
	struct notify_common hdr;
	__u32 src_label;
	__u32 dst_label;
};

#define NOTIFY_DATA_OFFSET 32

struct drop_notify {
	struct notify_head head;
	__u16 line;
	__u8 file;
	__u8 pad0;
	__u32 cookie;
	__u8 data[NOTIFY_CAPTURE_LEN];
};

struct trace_notify {
	struct notify_head head;
	__u8 reason;
	__u8 pad0[7];
	__u8 data[NOTIFY_CAPTURE_LEN];
};

struct policy_verdict_notify {
	struct notify_head head;
	__u16 verdict;
	__u8 match_type;
	__u8 pad0;
	__u32 cookie;
	__u8 data[NOTIFY_CAPTURE_LEN];
};

_Static_assert(__builtin_offsetof(struct drop_notify, data) == NOTIFY_DATA_OFFSET, "drop_notify capture offset");
_Static_assert(__builtin_offsetof(struct trace_notify, data) == NOTIFY_DATA_OFFSET, "trace_notify capture offset");
_Static_assert(__builtin_offsetof(struct policy_verdict_notify, data) == NOTIFY_DATA_OFFSET,
	       "policy_verdict_notify capture offset");

/* Waking the reader costs an interrupt (a self-IPI, expensive in a VM) for every record while it
 * keeps up. Instead the reader polls on a short timer and the record that makes NOTIFY_WAKEUP_BYTES
 * wait wakes it once; later records do not, whether it is reading or not. `size` is this
 * record's share of what is waiting (it counts from reserve). */
#define NOTIFY_WAKEUP_BYTES (64 * 1024)
#define RINGBUF_RECORD_HEADER 8

static __always_inline __u64 notify_submit_flags(__u32 size)
{
	__u64 waiting = bpf_ringbuf_query(&cilium_events, BPF_RB_AVAIL_DATA);

	if (waiting >= NOTIFY_WAKEUP_BYTES && waiting < NOTIFY_WAKEUP_BYTES + size + RINGBUF_RECORD_HEADER)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

/* Reserves a zeroed record of `size` bytes, fills its head and copies the packet from its IPv4
 * header on into the capture at NOTIFY_DATA_OFFSET. NULL when the ring is full. */
static __always_inline void *notify_reserve(struct __sk_buff *skb, __u32 size, __u8 type, __u8 subtype,
					    __u16 ep_id, __u8 dir, __u32 src_label, __u32 dst_label)
{
	struct notify_head *h = bpf_ringbuf_reserve(&cilium_events, size, 0);
	__u32 cap = 0;

	if (!h)
		return NULL;
	__builtin_memset(h, 0, size);
	h->hdr.type = type;
	h->hdr.subtype = subtype;
	h->hdr.source = ep_id;
	h->hdr.len_orig = skb->len;
	h->hdr.version = NOTIFY_VERSION;
	h->hdr.dir = dir;
	h->hdr.ifindex = skb->ifindex;
	h->src_label = src_label;
	h->dst_label = dst_label;
	if (skb->len > ETH_HLEN)
		cap = skb->len - ETH_HLEN;
	if (cap > NOTIFY_CAPTURE_LEN)
		cap = NOTIFY_CAPTURE_LEN;
	if (cap > 0 && bpf_skb_load_bytes(skb, ETH_HLEN, (__u8 *)h + NOTIFY_DATA_OFFSET, cap) < 0)
		cap = 0;
	h->hdr.len_cap = cap;
	return h;
}

static __always_inline void send_drop_notify(struct __sk_buff *skb, __u16 ep_id, __u32 src_label,
					     __u32 dst_label, __u8 reason, __u8 dir, __u16 line, __u32 cookie)
{
	struct drop_notify *n = notify_reserve(skb, sizeof(*n), CILIUM_NOTIFY_DROP, reason, ep_id, dir,
					       src_label, dst_label);

	if (!n)
		return;
	n->line = line;
	n->file = BPF_FILE_ID;
	n->cookie = cookie;
	bpf_ringbuf_submit(n, notify_submit_flags(sizeof(*n)));
}

static __always_inline void send_trace_notify(struct __sk_buff *skb, __u16 ep_id, __u32 src_label,
					      __u32 dst_label, __u8 obs_point, __u8 dir, __u8 ct_state)
{
	struct trace_notify *n = notify_reserve(skb, sizeof(*n), CILIUM_NOTIFY_TRACE, obs_point, ep_id, dir,
						src_label, dst_label);

	if (!n)
		return;
	n->reason = ct_state;
	bpf_ringbuf_submit(n, notify_submit_flags(sizeof(*n)));
}

static __always_inline void send_policy_verdict_notify(struct __sk_buff *skb, __u16 ep_id, __u32 src_label,
						       __u32 dst_label, __u8 dir, __u16 verdict, __u8 match_type,
						       __u32 cookie)
{
	struct policy_verdict_notify *n = notify_reserve(skb, sizeof(*n), CILIUM_NOTIFY_POLICY_VERDICT, 0, ep_id,
							 dir, src_label, dst_label);

	if (!n)
		return;
	n->verdict = verdict;
	n->match_type = match_type;
	n->cookie = cookie;
	bpf_ringbuf_submit(n, notify_submit_flags(sizeof(*n)));
}

/* Per-CPU counters: no atomics needed. */
static __always_inline void metrics_count(__u8 reason, __u8 dir, __u16 line, __u32 bytes)
{
	struct metrics_key key = {
		.reason = reason,
		.dir = dir,
		.line = line,
		.file = reason ? BPF_FILE_ID : 0,
	};
	struct metrics_value *v = bpf_map_lookup_elem(&cilium_metrics, &key);

	if (v) {
		v->count += 1;
		v->bytes += bytes;
		return;
	}
	struct metrics_value init = { .count = 1, .bytes = bytes };
	if (bpf_map_update_elem(&cilium_metrics, &key, &init, BPF_NOEXIST) == 0)
		return;
	/* Another CPU created the key in between. */
	v = bpf_map_lookup_elem(&cilium_metrics, &key);
	if (v) {
		v->count += 1;
		v->bytes += bytes;
	}
}

#endif
