// SPDX-License-Identifier: GPL-2.0
// Test fixture the verifier must reject: it reads packet data without a bounds check.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int fixture_unchecked(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;

	return data[20];
}

char _license[] SEC("license") = "GPL";
