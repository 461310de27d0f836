// The history's block encoding: a block of flows as one dictionary of the strings it repeats
// (addresses, enum names, summaries, endpoints and policies as JSON) and one row per flow of
// varints: time as nanoseconds since the previous flow, the uuid as its first 24 characters (from
// the dictionary) and the delta of its last 48 bits (the observer's uuids count up), dictionary
// indexes, ports, flag bits. A field this encoding does not know travels as JSON, so a block
// decodes to flows equal to the ones encoded. Compression (store.ts) squeezes the rows further.
import type { Endpoint, Flow, Layer4, Policy, TCPFlags, Timestamp } from '../../../hubble/flow-types.js';
import { ByteReader, ByteReaderError, ByteWriter } from './bytes.js';

const FORMAT = 1;

// Row presence bits.
const HAS_DROP_REASON = 1 << 0;
const HAS_DESC_NAME = 1 << 1;
const HAS_DESC_NUMBER = 1 << 2;
const HAS_MATCH_TYPE = 1 << 3;
const HAS_OBS_POINT = 1 << 4;
const HAS_TRACE_REASON = 1 << 5;
const HAS_IS_REPLY = 1 << 6;
const IS_REPLY = 1 << 7;
const HAS_REPLY = 1 << 8;
const REPLY = 1 << 9;
const HAS_INTERFACE = 1 << 10;
const HAS_EXTRA = 1 << 11;
const L4_COMPACT = 1 << 12;
const L4_JSON = 1 << 13;
const IP_JSON = 1 << 14;
const UUID_RAW = 1 << 15;
const POLICY_BITS = 16; // four bits from here: egress/ingress allowed/denied by
const IFACE_JSON = 1 << 20;
const POLICY_FIELDS = ['egress_allowed_by', 'ingress_allowed_by', 'egress_denied_by', 'ingress_denied_by'] as const;

// Fields whose strings repeat from flow to flow (Dictionary.ofAt).
const SLOT_UUID = 0;
const SLOT_VERDICT = 1;
const SLOT_DIRECTION = 2;
const SLOT_IP_VERSION = 3;
const SLOT_TYPE = 4;
const SLOT_NODE = 5;
const SLOT_SUMMARY = 6;
const SLOT_OBS_POINT = 7;
const SLOT_TRACE_REASON = 8;
const SLOT_IFNAME = 9;

const L4_KINDS = ['TCP', 'UDP', 'SCTP', 'ICMPv4'] as const;
const TCP_FLAGS: (keyof TCPFlags)[] = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR', 'NS'];

const KNOWN = new Set<string>([
  'time',
  'uuid',
  'verdict',
  'drop_reason',
  'drop_reason_desc',
  'IP',
  'l4',
  'source',
  'destination',
  'Type',
  'node_name',
  'event_type',
  'traffic_direction',
  'policy_match_type',
  'trace_observation_point',
  'trace_reason',
  'is_reply',
  'reply',
  'interface',
  'Summary',
  ...POLICY_FIELDS,
]);

const UUID_TAIL = /^[0-9a-f]{12}$/;
// Fields every flow has: time, uuid, verdict, IP, source, destination, Type, node_name,
// event_type, traffic_direction, Summary.
const REQUIRED_FIELDS = 11;

function popcount(n: number): number {
  let c = 0;
  for (; n !== 0; n &= n - 1) c++;
  return c;
}

// The optional fields a row's bits say are present.
function optionalCount(bits: number, f: Flow): number {
  const flags = HAS_DROP_REASON | HAS_DESC_NAME | HAS_DESC_NUMBER | HAS_MATCH_TYPE | HAS_OBS_POINT | HAS_TRACE_REASON | HAS_IS_REPLY | HAS_REPLY | HAS_INTERFACE;
  return popcount(bits & flags) + popcount((bits >>> POLICY_BITS) & 0xf) + (f.l4 !== undefined ? 1 : 0);
}

function unknownFields(f: Flow): Record<string, unknown> | undefined {
  let extra: Record<string, unknown> | undefined;
  for (const key of Object.keys(f)) {
    if (KNOWN.has(key)) continue;
    extra ??= {};
    extra[key] = (f as unknown as Record<string, unknown>)[key];
  }
  return extra;
}

/** The dictionary a block's rows index: equal strings once, objects by identity first, then by their JSON. */
class Dictionary {
  readonly strings: string[] = [];
  private readonly index = new Map<string, number>();
  private readonly objects = new Map<object, number>();
  private readonly singletons = new Map<object, number>();

  private readonly lastString: string[] = [];
  private readonly lastIndex: number[] = [];

  /** of(), remembering the last value at `slot`: a field that repeats its previous value skips the map. */
  ofAt(slot: number, s: string): number {
    if (this.lastString[slot] === s) return this.lastIndex[slot]!;
    const i = this.of(s);
    this.lastString[slot] = s;
    this.lastIndex[slot] = i;
    return i;
  }

  of(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.strings.push(s);
      this.index.set(s, i);
    }
    return i;
  }

  /** A list of one object (a flow's deciding policy) by that object's identity, then by JSON. */
  ofSingleton(list: readonly object[]): number {
    if (list.length !== 1) return this.of(JSON.stringify(list));
    let i = this.singletons.get(list[0]!);
    if (i === undefined) {
      i = this.of(JSON.stringify(list));
      this.singletons.set(list[0]!, i);
    }
    return i;
  }

  ofObject(o: object): number {
    let i = this.objects.get(o);
    if (i === undefined) {
      i = this.of(JSON.stringify(o));
      this.objects.set(o, i);
    }
    return i;
  }
}

function nanosOf(t: Timestamp): [number, number] {
  return [Number(t.seconds), t.nanos];
}

function keyCount(o: object): number {
  return Object.keys(o).length;
}

function compactL4(l4: Layer4): number {
  if (keyCount(l4) !== 1) return -1;
  const inner = l4.TCP ?? l4.UDP ?? l4.SCTP ?? l4.ICMPv4;
  if (inner === undefined) return -1;
  // TCP carries ports and flags, the others two numbers each.
  const kind = l4.TCP ? 0 : l4.UDP ? 1 : l4.SCTP ? 2 : 3;
  return keyCount(inner) === (kind === 0 ? 3 : 2) ? kind : -1;
}

function flagBits(flags: TCPFlags): [number, number] {
  let present = 0;
  let set = 0;
  for (let i = 0; i < TCP_FLAGS.length; i++) {
    const v = flags[TCP_FLAGS[i]!];
    if (v === undefined) continue;
    present |= 1 << i;
    if (v) set |= 1 << i;
  }
  return [present, set];
}

/** The uncompressed block of `flows` (in the order given; times need not be increasing). */
export function encodeFlows(flows: readonly Flow[]): Buffer {
  const dict = new Dictionary();
  const rows = new ByteWriter(flows.length * 48 + 64);
  let [prevSec, prevNanos] = flows.length > 0 ? nanosOf(flows[0]!.time) : [0, 0];
  const baseSec = prevSec;
  const baseNanos = prevNanos;
  let prevCounter = 0;
  for (const f of flows) {
    const [sec, nanos] = nanosOf(f.time);
    rows.varint((sec - prevSec) * 1e9 + (nanos - prevNanos));
    prevSec = sec;
    prevNanos = nanos;

    let bits = 0;
    const tail = f.uuid.slice(24);
    const uuidCompact = f.uuid.length === 36 && UUID_TAIL.test(tail);
    if (!uuidCompact) bits |= UUID_RAW;
    if (f.drop_reason !== undefined) bits |= HAS_DROP_REASON;
    if (typeof f.drop_reason_desc === 'string') bits |= HAS_DESC_NAME;
    else if (typeof f.drop_reason_desc === 'number') bits |= HAS_DESC_NUMBER;
    if (f.policy_match_type !== undefined) bits |= HAS_MATCH_TYPE;
    if (f.trace_observation_point !== undefined) bits |= HAS_OBS_POINT;
    if (f.trace_reason !== undefined) bits |= HAS_TRACE_REASON;
    if (f.is_reply !== undefined) bits |= HAS_IS_REPLY | (f.is_reply.value ? IS_REPLY : 0);
    if (f.reply !== undefined) bits |= HAS_REPLY | (f.reply ? REPLY : 0);
    if (f.interface !== undefined) bits |= HAS_INTERFACE | (keyCount(f.interface) === 2 ? 0 : IFACE_JSON);
    const l4Kind = f.l4 === undefined ? -2 : compactL4(f.l4);
    if (l4Kind >= 0) bits |= L4_COMPACT;
    else if (l4Kind === -1) bits |= L4_JSON;
    const ipCompact = keyCount(f.IP) === 3;
    if (!ipCompact) bits |= IP_JSON;
    for (let i = 0; i < POLICY_FIELDS.length; i++) if (f[POLICY_FIELDS[i]!] !== undefined) bits |= 1 << (POLICY_BITS + i);
    // Every key accounted for by the bits (V8 answers Object.keys of a known shape from a cache):
    // no field this encoding does not know.
    const extra = Object.keys(f).length === REQUIRED_FIELDS + optionalCount(bits, f) ? undefined : unknownFields(f);
    if (extra !== undefined) bits |= HAS_EXTRA;
    rows.uvarint(bits);

    if (uuidCompact) {
      rows.uvarint(dict.ofAt(SLOT_UUID, f.uuid.slice(0, 24)));
      const counter = parseInt(tail, 16);
      rows.varint(counter - prevCounter);
      prevCounter = counter;
    } else rows.uvarint(dict.of(f.uuid));
    rows.uvarint(dict.ofAt(SLOT_VERDICT, f.verdict));
    rows.uvarint(f.event_type.type);
    rows.uvarint(f.event_type.sub_type);
    rows.uvarint(dict.ofAt(SLOT_DIRECTION, f.traffic_direction));
    if (ipCompact) {
      rows.uvarint(dict.of(f.IP.source));
      rows.uvarint(dict.of(f.IP.destination));
      rows.uvarint(dict.ofAt(SLOT_IP_VERSION, f.IP.ipVersion));
    } else rows.uvarint(dict.of(JSON.stringify(f.IP)));
    rows.uvarint(dict.ofObject(f.source));
    rows.uvarint(dict.ofObject(f.destination));
    rows.uvarint(dict.ofAt(SLOT_TYPE, f.Type));
    rows.uvarint(dict.ofAt(SLOT_NODE, f.node_name));
    rows.uvarint(dict.ofAt(SLOT_SUMMARY, f.Summary));
    if (l4Kind >= 0) {
      rows.uvarint(l4Kind);
      const l4 = f.l4!;
      if (l4.ICMPv4) {
        rows.uvarint(l4.ICMPv4.type);
        rows.uvarint(l4.ICMPv4.code);
      } else {
        const ports = (l4.TCP ?? l4.UDP ?? l4.SCTP)!;
        rows.uvarint(ports.source_port);
        rows.uvarint(ports.destination_port);
        if (l4.TCP) {
          const [present, set] = flagBits(l4.TCP.flags);
          rows.uvarint(present);
          rows.uvarint(set);
        }
      }
    } else if (l4Kind === -1) rows.uvarint(dict.of(JSON.stringify(f.l4)));
    if (f.drop_reason !== undefined) rows.uvarint(f.drop_reason);
    if (typeof f.drop_reason_desc === 'string') rows.uvarint(dict.of(f.drop_reason_desc));
    else if (typeof f.drop_reason_desc === 'number') rows.uvarint(f.drop_reason_desc);
    if (f.policy_match_type !== undefined) rows.uvarint(f.policy_match_type);
    if (f.trace_observation_point !== undefined) rows.uvarint(dict.ofAt(SLOT_OBS_POINT, f.trace_observation_point));
    if (f.trace_reason !== undefined) rows.uvarint(dict.ofAt(SLOT_TRACE_REASON, f.trace_reason));
    if (f.interface !== undefined) {
      if (bits & IFACE_JSON) rows.uvarint(dict.of(JSON.stringify(f.interface)));
      else {
        rows.uvarint(f.interface.index);
        rows.uvarint(dict.ofAt(SLOT_IFNAME, f.interface.name));
      }
    }
    for (const field of POLICY_FIELDS) {
      const policies = f[field];
      if (policies !== undefined) rows.uvarint(dict.ofSingleton(policies));
    }
    if (extra !== undefined) rows.uvarint(dict.of(JSON.stringify(extra)));
  }
  const out = new ByteWriter(rows.pos + dict.strings.length * 32 + 64);
  out.uvarint(FORMAT);
  out.uvarint(flows.length);
  out.uvarint(baseSec);
  out.uvarint(baseNanos);
  out.uvarint(dict.strings.length);
  for (const s of dict.strings) out.string(s);
  out.bytes(rows.view());
  return Buffer.from(out.view());
}

/** The flows of an uncompressed block, in their order; objects the block repeats (endpoints, policies) are shared between its flows. */
export function decodeFlows(block: Buffer): Flow[] {
  const r = new ByteReader(block);
  const format = r.uvarint();
  if (format !== FORMAT) throw new ByteReaderError(`format ${format}, expected ${FORMAT}`);
  const count = r.uvarint();
  let sec = r.uvarint();
  let nanos = r.uvarint();
  const strings = new Array<string>(r.uvarint());
  for (let i = 0; i < strings.length; i++) strings[i] = r.string();
  const parsed = new Map<number, unknown>();
  const str = (): string => {
    const i = r.uvarint();
    const s = strings[i];
    if (s === undefined) throw new ByteReaderError(`dictionary index ${i} of ${strings.length}`);
    return s;
  };
  const json = <T>(): T => {
    const i = r.uvarint();
    let v = parsed.get(i);
    if (v === undefined) {
      const s = strings[i];
      if (s === undefined) throw new ByteReaderError(`dictionary index ${i} of ${strings.length}`);
      v = JSON.parse(s) as unknown;
      parsed.set(i, v);
    }
    return v as T;
  };
  const flows = new Array<Flow>(count);
  let counter = 0;
  let secText = String(sec);
  for (let n = 0; n < count; n++) {
    const t = nanos + r.varint();
    const carry = Math.floor(t / 1e9);
    if (carry !== 0) {
      sec += carry;
      secText = String(sec);
    }
    nanos = t - carry * 1e9;
    const bits = r.uvarint();
    let uuid: string;
    if (bits & UUID_RAW) uuid = str();
    else {
      const head = str();
      counter += r.varint();
      uuid = head + counter.toString(16).padStart(12, '0');
    }
    const verdict = str() as Flow['verdict'];
    const event_type = { type: r.uvarint(), sub_type: r.uvarint() };
    const traffic_direction = str() as Flow['traffic_direction'];
    const IP = bits & IP_JSON ? json<Flow['IP']>() : { source: str(), destination: str(), ipVersion: str() as Flow['IP']['ipVersion'] };
    const source = json<Endpoint>();
    const destination = json<Endpoint>();
    const flow: Flow = {
      time: { seconds: secText, nanos },
      uuid,
      verdict,
      IP,
      source,
      destination,
      Type: str() as Flow['Type'],
      node_name: str(),
      event_type,
      traffic_direction,
      Summary: str(),
    };
    if (bits & L4_COMPACT) {
      const kind = L4_KINDS[r.uvarint()];
      if (kind === 'ICMPv4') flow.l4 = { ICMPv4: { type: r.uvarint(), code: r.uvarint() } };
      else if (kind === 'TCP') {
        const ports = { source_port: r.uvarint(), destination_port: r.uvarint() };
        const present = r.uvarint();
        const set = r.uvarint();
        const flags: TCPFlags = {};
        for (let i = 0; i < TCP_FLAGS.length; i++) if (present & (1 << i)) flags[TCP_FLAGS[i]!] = (set & (1 << i)) !== 0;
        flow.l4 = { TCP: { ...ports, flags } };
      } else if (kind !== undefined) flow.l4 = { [kind]: { source_port: r.uvarint(), destination_port: r.uvarint() } };
      else throw new ByteReaderError('unknown L4 kind');
    } else if (bits & L4_JSON) flow.l4 = json<Layer4>();
    if (bits & HAS_DROP_REASON) flow.drop_reason = r.uvarint();
    if (bits & HAS_DESC_NAME) flow.drop_reason_desc = str();
    else if (bits & HAS_DESC_NUMBER) flow.drop_reason_desc = r.uvarint();
    if (bits & HAS_MATCH_TYPE) flow.policy_match_type = r.uvarint();
    if (bits & HAS_OBS_POINT) flow.trace_observation_point = str();
    if (bits & HAS_TRACE_REASON) flow.trace_reason = str() as Flow['trace_reason'];
    if (bits & HAS_IS_REPLY) flow.is_reply = { value: (bits & IS_REPLY) !== 0 };
    if (bits & HAS_REPLY) flow.reply = (bits & REPLY) !== 0;
    if (bits & HAS_INTERFACE) flow.interface = bits & IFACE_JSON ? json<{ index: number; name: string }>() : { index: r.uvarint(), name: str() };
    for (let i = 0; i < POLICY_FIELDS.length; i++) if (bits & (1 << (POLICY_BITS + i))) flow[POLICY_FIELDS[i]!] = json<Policy[]>();
    if (bits & HAS_EXTRA) Object.assign(flow, json<Record<string, unknown>>());
    flows[n] = flow;
  }
  if (!r.done) throw new ByteReaderError(`${count} flows end before the block does`);
  return flows;
}
