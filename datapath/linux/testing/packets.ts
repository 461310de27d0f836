// Ethernet/IPv4 frames for program test runs (verdict tests and the per-packet benchmark).
import { ipv4Packet, setIPv4Checksum } from '../../libbpf/testdata/fixtures.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP } from '../../maps/protocols.js';

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_ACK = 0x10;


const ETH_HLEN = 14;

export interface FlowSpec {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export function tcpPacket(f: FlowSpec & { flags: number }): Buffer {
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(f.sport, 0);
  tcp.writeUInt16BE(f.dport, 2);
  tcp[12] = 5 << 4;
  tcp[13] = f.flags;
  tcp.writeUInt16BE(65535, 14);
  return ipv4Packet({ protocol: IPPROTO_TCP, src: f.src, dst: f.dst, payload: tcp });
}

export function udpPacket(f: FlowSpec): Buffer {
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(f.sport, 0);
  udp.writeUInt16BE(f.dport, 2);
  udp.writeUInt16BE(8, 4);
  return ipv4Packet({ protocol: IPPROTO_UDP, src: f.src, dst: f.dst, payload: udp });
}

export interface IcmpSpec {
  src: string;
  dst: string;
  type: number;
  code?: number;
  /** Echo identifier (types 0 and 8). */
  id?: number;
  /** For errors: the frame whose IPv4 header and first 8 L4 bytes are quoted. */
  quote?: Buffer;
}

export function icmpPacket(s: IcmpSpec): Buffer {
  const quoted = s.quote ? s.quote.subarray(ETH_HLEN, ETH_HLEN + 28) : Buffer.alloc(0);
  const icmp = Buffer.alloc(8 + quoted.length);
  icmp[0] = s.type;
  icmp[1] = s.code ?? 0;
  icmp.writeUInt16BE(s.id ?? 0, 4);
  quoted.copy(icmp, 8);
  return ipv4Packet({ protocol: IPPROTO_ICMP, src: s.src, dst: s.dst, payload: icmp });
}

/** An ARP frame: passed by the endpoint programs untouched. */
export function arpPacket(): Buffer {
  const frame = Buffer.alloc(ETH_HLEN + 28);
  frame.fill(0xff, 0, 6);
  frame.writeUInt16BE(0x0806, 12);
  return frame;
}

/** An IPv6 frame header: the endpoint programs handle IPv4 only. */
export function ipv6Packet(): Buffer {
  const frame = Buffer.alloc(ETH_HLEN + 40);
  frame.writeUInt16BE(0x86dd, 12);
  frame[ETH_HLEN] = 0x60;
  return frame;
}

export interface FragmentSpec {
  /** IPv4 identification shared by the fragments of one datagram. */
  id: number;
  /** Offset of this fragment's data in 8-byte units; 0 for the first fragment. */
  offset: number;
  /** More fragments follow. */
  more: boolean;
}

const IP_MF = 0x2000;

/**
 * `frame` as one fragment of its datagram: the first fragment keeps the L4 header; a later one
 * carries 16 bytes of data in its place, as on the wire.
 */
export function ipv4Fragment(frame: Buffer, f: FragmentSpec): Buffer {
  const out = f.offset === 0 ? Buffer.from(frame) : Buffer.concat([frame.subarray(0, ETH_HLEN + 20), Buffer.alloc(16, 0xab)]);
  const ip = out.subarray(ETH_HLEN, ETH_HLEN + 20);
  ip.writeUInt16BE(out.length - ETH_HLEN, 2);
  ip.writeUInt16BE(f.id, 4);
  ip.writeUInt16BE((f.more ? IP_MF : 0) | f.offset, 6);
  setIPv4Checksum(ip);
  return out;
}
