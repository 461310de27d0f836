// IP protocol numbers the datapath treats specially (the same numbers bpf/lib/common.h uses).
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_SCTP = 132;

/** Protocols whose L4 header starts with source and destination port. */
export const PORT_PROTOCOLS: readonly number[] = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP];
