// The history's block encoding: a block of flows as one dictionary of the strings it repeats
// (addresses, enum names, summaries, endpoints and policies as JSON) and one row per flow of
// varints: time as nanoseconds since the previous flow, the uuid as its first 24 characters (from
// the dictionary) and the delta of its last 48 bits (the observer's uuids count up), dictionary
// indexes, ports, flag bits. A field this encoding does not know travels as JSON, so a block
// decodes to flows equal to the ones encoded. Compression (store.ts) squeezes the rows further.
import type { Endpoint, Flow, Layer4, Policy, TCPFlags } from '../../../hubble/flow-types.js';
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
// The bits of a row that each say one optional field is present.
const OPTIONAL_FIELDS = HAS_DROP_REASON | HAS_DESC_NAME | HAS_DESC_NUMBER | HAS_MATCH_TYPE | HAS_OBS_POINT | HAS_TRACE_REASON | HAS_IS_REPLY | HAS_REPLY | HAS_INTERFACE | L4_COMPACT | L4_JSON | (0xf << POLICY_BITS);
const POLICY_FIELDS = ['egress_allowed_by', 'ingress_allowed_by', 'egress_denied_by', 'ingress_denied_by'] as const;

// Fields whose strings repeat from flow to flow (Dictionary.ofAt).
const SLOT_VERDICT = 0;
const SLOT_DIRECTION = 1;
const SLOT_IP_VERSION = 2;
const SLOT_TYPE = 3;
const SLOT_NODE = 4;
const SLOT_SUMMARY = 5;
const SLOT_OBS_POINT = 6;
const SLOT_TRACE_REASON = 7;
const SLOT_IFNAME = 8;

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

const UUID_LENGTH = 36;
const UUID_HEAD = 24;
// Fields every flow has: time, uuid, verdict, IP, source, destination, Type, node_name,
// event_type, traffic_direction, Summary.
const REQUIRED_FIELDS = 11;

function popcount(n: number): number {
  let c = 0;
  for (; n !== 0; n &= n - 1) c++;
  return c;
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

function keyCount(o: object): number {
  return Object.keys(o).length;
}

// The counter in the last 12 hex digits of a uuid of FlowIds; -1 for any other uuid.
function uuidCounter(uuid: string): number {
  if (uuid.length !== UUID_LENGTH) return -1;
  let n = 0;
  for (let i = UUID_HEAD; i < UUID_LENGTH; i++) {
    const c = uuid.charCodeAt(i);
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return -1;
    n = n * 16 + digit;
  }
  return n;
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

// The L4 kind a row stores in its compact form, or -1 when the L4 carries more than it.
function compactL4(l4: Layer4): number {
  if (keyCount(l4) !== 1) return -1;
  let kind: number;
  let inner: object | undefined;
  if ((inner = l4.TCP) !== undefined) kind = 0;
  else if ((inner = l4.UDP) !== undefined) kind = 1;
  else if ((inner = l4.SCTP) !== undefined) kind = 2;
  else if ((inner = l4.ICMPv4) !== undefined) kind = 3;
  else return -1;
  // TCP carries ports and flags, the others two numbers each.
  return keyCount(inner) === (kind === 0 ? 3 : 2) ? kind : -1;
}

// A flag's presence bit at `i` and its value at `i + 9`.
function flagBit(v: boolean | undefined, i: number): number {
  return v === undefined ? 0 : v ? (1 << i) | (1 << (i + 9)) : 1 << i;
}

// Named loads in TCP_FLAGS order: a loop over the names would be a megamorphic keyed load per flag.
function flagBits(fl: TCPFlags): number {
  return flagBit(fl.FIN, 0) | flagBit(fl.SYN, 1) | flagBit(fl.RST, 2) | flagBit(fl.PSH, 3) | flagBit(fl.ACK, 4) | flagBit(fl.URG, 5) | flagBit(fl.ECE, 6) | flagBit(fl.CWR, 7) | flagBit(fl.NS, 8);
}

/**
 * One block encoded a flow at a time: add() writes the flow's row at once, so a block being
 * filled holds bytes, not flows. finish() gives the block encodeFlows gives for the same flows.
 */
export class BlockEncoder {
  private dict = new Dictionary();
  private readonly rows: ByteWriter;
  /** Flows added since the last reset. */
  count = 0;
  /** Oldest and newest flow time (ms since the epoch, fractions kept). */
  minMs = Infinity;
  maxMs = -Infinity;
  private baseSec = 0;
  private baseNanos = 0;
  private prevSec = 0;
  private prevNanos = 0;
  private prevSecText = '';
  private prevCounter = 0;
  private uuidHead = '';
  private uuidHeadIndex = 0;

  constructor(expectedFlows = 1024) {
    this.rows = new ByteWriter(expectedFlows * 32 + 64);
  }

  /** Empties the block; the row buffer is kept for the next one. */
  reset(): void {
    this.dict = new Dictionary();
    this.rows.pos = 0;
    this.count = 0;
    this.minMs = Infinity;
    this.maxMs = -Infinity;
    this.prevSecText = '';
    this.prevCounter = 0;
    this.uuidHead = '';
  }

  /** Encodes `f` into the block; a flow that cannot be encoded (it throws) leaves the block as it was. */
  add(f: Flow): void {
    const { pos } = this.rows;
    const { prevSec, prevSecText, prevNanos, prevCounter, minMs, maxMs } = this;
    try {
      this.row(f);
    } catch (err) {
      this.rows.pos = pos;
      Object.assign(this, { prevSec, prevSecText, prevNanos, prevCounter, minMs, maxMs });
      throw err;
    }
  }

  private row(f: Flow): void {
    const rows = this.rows;
    const dict = this.dict;
    const t = f.time;
    const sec = t.seconds === this.prevSecText ? this.prevSec : Number(t.seconds);
    const nanos = t.nanos;
    if (this.count === 0) {
      this.baseSec = this.prevSec = sec;
      this.baseNanos = this.prevNanos = nanos;
    }
    rows.varint((sec - this.prevSec) * 1e9 + (nanos - this.prevNanos));
    this.prevSec = sec;
    this.prevSecText = t.seconds;
    this.prevNanos = nanos;
    const ms = sec * 1000 + nanos / 1e6;
    if (ms < this.minMs) this.minMs = ms;
    if (ms > this.maxMs) this.maxMs = ms;

    let bits = 0;
    const counter = uuidCounter(f.uuid);
    if (counter < 0) bits |= UUID_RAW;
    if (f.drop_reason !== undefined) bits |= HAS_DROP_REASON;
    const desc = f.drop_reason_desc;
    if (typeof desc === 'string') bits |= HAS_DESC_NAME;
    else if (typeof desc === 'number') bits |= HAS_DESC_NUMBER;
    if (f.policy_match_type !== undefined) bits |= HAS_MATCH_TYPE;
    if (f.trace_observation_point !== undefined) bits |= HAS_OBS_POINT;
    if (f.trace_reason !== undefined) bits |= HAS_TRACE_REASON;
    if (f.is_reply !== undefined) bits |= HAS_IS_REPLY | (f.is_reply.value ? IS_REPLY : 0);
    if (f.reply !== undefined) bits |= HAS_REPLY | (f.reply ? REPLY : 0);
    const iface = f.interface;
    if (iface !== undefined) bits |= HAS_INTERFACE | (keyCount(iface) === 2 ? 0 : IFACE_JSON);
    const l4 = f.l4;
    const l4Kind = l4 === undefined ? -2 : compactL4(l4);
    if (l4Kind >= 0) bits |= L4_COMPACT;
    else if (l4Kind === -1) bits |= L4_JSON;
    const ip = f.IP;
    const ipCompact = keyCount(ip) === 3;
    if (!ipCompact) bits |= IP_JSON;
    const eab = f.egress_allowed_by;
    const iab = f.ingress_allowed_by;
    const edb = f.egress_denied_by;
    const idb = f.ingress_denied_by;
    if (eab !== undefined) bits |= 1 << POLICY_BITS;
    if (iab !== undefined) bits |= 1 << (POLICY_BITS + 1);
    if (edb !== undefined) bits |= 1 << (POLICY_BITS + 2);
    if (idb !== undefined) bits |= 1 << (POLICY_BITS + 3);
    // Every key accounted for by the bits: no field this encoding does not know.
    const extra = keyCount(f) === REQUIRED_FIELDS + popcount(bits & OPTIONAL_FIELDS) ? undefined : unknownFields(f);
    if (extra !== undefined) bits |= HAS_EXTRA;
    rows.uvarint(bits);

    if (counter >= 0) {
      const uuid = f.uuid;
      // substring and ===: a fraction of what startsWith costs here.
      const head = uuid.substring(0, UUID_HEAD);
      if (head !== this.uuidHead) {
        this.uuidHead = head;
        this.uuidHeadIndex = dict.of(head);
      }
      rows.uvarint(this.uuidHeadIndex);
      rows.varint(counter - this.prevCounter);
      this.prevCounter = counter;
    } else rows.uvarint(dict.of(f.uuid));
    rows.uvarint(dict.ofAt(SLOT_VERDICT, f.verdict));
    rows.uvarint(f.event_type.type);
    rows.uvarint(f.event_type.sub_type);
    rows.uvarint(dict.ofAt(SLOT_DIRECTION, f.traffic_direction));
    if (ipCompact) {
      rows.uvarint(dict.of(ip.source));
      rows.uvarint(dict.of(ip.destination));
      rows.uvarint(dict.ofAt(SLOT_IP_VERSION, ip.ipVersion));
    } else rows.uvarint(dict.of(JSON.stringify(ip)));
    rows.uvarint(dict.ofObject(f.source));
    rows.uvarint(dict.ofObject(f.destination));
    rows.uvarint(dict.ofAt(SLOT_TYPE, f.Type));
    rows.uvarint(dict.ofAt(SLOT_NODE, f.node_name));
    rows.uvarint(dict.ofAt(SLOT_SUMMARY, f.Summary));
    if (l4Kind >= 0) {
      rows.uvarint(l4Kind);
      if (l4Kind === 3) {
        rows.uvarint(l4!.ICMPv4!.type);
        rows.uvarint(l4!.ICMPv4!.code);
      } else {
        const ports = (l4Kind === 0 ? l4!.TCP : l4Kind === 1 ? l4!.UDP : l4!.SCTP)!;
        rows.uvarint(ports.source_port);
        rows.uvarint(ports.destination_port);
        if (l4Kind === 0) {
          const flags = flagBits(l4!.TCP!.flags);
          rows.uvarint(flags & 0x1ff);
          rows.uvarint(flags >>> 9);
        }
      }
    } else if (l4Kind === -1) rows.uvarint(dict.of(JSON.stringify(l4)));
    if (f.drop_reason !== undefined) rows.uvarint(f.drop_reason);
    if (typeof desc === 'string') rows.uvarint(dict.of(desc));
    else if (typeof desc === 'number') rows.uvarint(desc);
    if (f.policy_match_type !== undefined) rows.uvarint(f.policy_match_type);
    if (f.trace_observation_point !== undefined) rows.uvarint(dict.ofAt(SLOT_OBS_POINT, f.trace_observation_point));
    if (f.trace_reason !== undefined) rows.uvarint(dict.ofAt(SLOT_TRACE_REASON, f.trace_reason));
    if (iface !== undefined) {
      if (bits & IFACE_JSON) rows.uvarint(dict.of(JSON.stringify(iface)));
      else {
        rows.uvarint(iface.index);
        rows.uvarint(dict.ofAt(SLOT_IFNAME, iface.name));
      }
    }
    if (eab !== undefined) rows.uvarint(dict.ofSingleton(eab));
    if (iab !== undefined) rows.uvarint(dict.ofSingleton(iab));
    if (edb !== undefined) rows.uvarint(dict.ofSingleton(edb));
    if (idb !== undefined) rows.uvarint(dict.ofSingleton(idb));
    if (extra !== undefined) rows.uvarint(dict.of(JSON.stringify(extra)));
    this.count++;
  }

  /** The uncompressed block of the flows added so far (the encoder stays as it is). */
  finish(): Buffer {
    const strings = this.dict.strings;
    const out = new ByteWriter(this.rows.pos + strings.length * 32 + 64);
    out.uvarint(FORMAT);
    out.uvarint(this.count);
    out.uvarint(this.count > 0 ? this.baseSec : 0);
    out.uvarint(this.count > 0 ? this.baseNanos : 0);
    out.uvarint(strings.length);
    for (const s of strings) out.string(s);
    out.bytes(this.rows.view());
    return Buffer.from(out.view());
  }
}

/** The uncompressed block of `flows` (in the order given; times need not be increasing). */
export function encodeFlows(flows: readonly Flow[]): Buffer {
  const block = new BlockEncoder(flows.length);
  for (const f of flows) block.add(f);
  return block.finish();
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
