// Messages as upstream's CLI prints them with -o json: protojson with the .proto field names
// (UseProtoNames), fields in declaration order, proto3 defaults left out, 64-bit integers as
// strings, Timestamps as RFC 3339 in UTC, wrappers as their value, then Go's json.Encoder
// (compact, HTML characters escaped, one line per message: goJson).
import type { EnumTypeDefinition } from '@grpc/proto-loader';
import { type Timestamp } from '../flow-types.js';
import { hubbleProtos } from '../protos.js';

interface FieldDescriptor {
  name: string;
  label: string;
  type: string;
  typeName: string;
}

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `google.protobuf.${n}`));

interface MessageDescriptor {
  field?: FieldDescriptor[];
  nestedType?: (MessageDescriptor & { name: string })[];
}

// Nested messages (flow.FlowFilter.Experimental) live in their parent's descriptor, not in the package definition.
function descriptor(fullName: string): { type?: MessageDescriptor } | undefined {
  const top = hubbleProtos().definition[fullName] as { type?: MessageDescriptor } | undefined;
  if (top !== undefined) return top;
  const dot = fullName.lastIndexOf('.');
  if (dot < 0) return undefined;
  const nested = descriptor(fullName.slice(0, dot))?.type?.nestedType?.find((n) => n.name === fullName.slice(dot + 1));
  return nested && { type: nested };
}

// Type names in descriptors are relative to the message's package (or nested in it).
function resolve(typeName: string, from: string): string {
  const pkg = from.slice(0, from.lastIndexOf('.'));
  for (const candidate of [`${from}.${typeName}`, `${pkg}.${typeName}`, typeName]) if (descriptor(candidate) !== undefined) return candidate;
  throw new Error(`protojson: unknown type ${typeName} in ${from}`);
}

const zeroEnumName = new Map<string, string>();
function enumZero(fullName: string): string {
  let name = zeroEnumName.get(fullName);
  if (name === undefined) {
    const values = (descriptor(fullName) as EnumTypeDefinition | undefined)?.type as { value: { name: string; number: number }[] } | undefined;
    name = values?.value.find((v) => v.number === 0)?.name ?? '';
    zeroEnumName.set(fullName, name);
  }
  return name;
}

/** Go's time.RFC3339Nano as protojson writes it: 0, 3, 6 or 9 fraction digits. */
export function rfc3339(ts: Timestamp): string {
  const base = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19);
  let frac = '';
  if (ts.nanos !== 0) {
    const nine = String(ts.nanos).padStart(9, '0');
    frac = `.${nine.endsWith('000000') ? nine.slice(0, 3) : nine.endsWith('000') ? nine.slice(0, 6) : nine}`;
  }
  return `${base}${frac}Z`;
}

function isDefault(field: FieldDescriptor, value: unknown, owner: string): boolean {
  if (value === null || value === undefined) return true;
  if (field.label === 'LABEL_REPEATED') return (value as unknown[]).length === 0;
  switch (field.type) {
    case 'TYPE_MESSAGE':
      return false;
    case 'TYPE_STRING':
      return value === '';
    case 'TYPE_BOOL':
      return value === false;
    case 'TYPE_BYTES':
      return (value as Uint8Array).length === 0;
    case 'TYPE_ENUM':
      return value === 0 || value === enumZero(resolve(field.typeName, owner));
    default:
      return value === 0 || value === '0';
  }
}

function scalar(field: FieldDescriptor, value: unknown): unknown {
  if (field.type === 'TYPE_BYTES') return Buffer.from(value as Uint8Array).toString('base64');
  // protojson spells the non-finite floats as strings.
  if ((field.type === 'TYPE_DOUBLE' || field.type === 'TYPE_FLOAT') && !Number.isFinite(value)) return String(value);
  return value;
}

function messageValue(fullName: string, value: unknown): unknown {
  if (fullName === 'google.protobuf.Timestamp') return rfc3339(value as Timestamp);
  if (WRAPPERS.has(fullName)) {
    const field = descriptor(fullName)!.type!.field![0]!;
    return scalar(field, (value as { value: unknown }).value);
  }
  if (fullName === 'google.protobuf.FieldMask') return (value as { paths: string[] }).paths.map((p) => p.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())).join(',');
  return toProtoJson(fullName, value as Record<string, unknown>);
}

/** The message `value` of type `fullName` (e.g. observer.GetFlowsResponse) as protojson's object. */
export function toProtoJson(fullName: string, value: Record<string, unknown>): Record<string, unknown> {
  const fields = descriptor(fullName)?.type?.field;
  if (fields === undefined) throw new Error(`protojson: ${fullName} is not a message`);
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const v = value[field.name];
    if (isDefault(field, v, fullName)) continue;
    const convert = (x: unknown) => (field.type === 'TYPE_MESSAGE' ? messageValue(resolve(field.typeName, fullName), x) : scalar(field, x));
    out[field.name] = field.label === 'LABEL_REPEATED' ? (v as unknown[]).map(convert) : convert(v);
  }
  return out;
}

function defaultOf(field: FieldDescriptor, owner: string): unknown {
  if (field.label === 'LABEL_REPEATED') return [];
  switch (field.type) {
    case 'TYPE_MESSAGE':
      return undefined;
    case 'TYPE_STRING':
      return '';
    case 'TYPE_BOOL':
      return false;
    case 'TYPE_BYTES':
      return Buffer.alloc(0);
    case 'TYPE_ENUM':
      return enumZero(resolve(field.typeName, owner));
    case 'TYPE_INT64':
    case 'TYPE_UINT64':
    case 'TYPE_SINT64':
    case 'TYPE_FIXED64':
    case 'TYPE_SFIXED64':
      return '0';
    default:
      return 0;
  }
}

function scalarFrom(field: FieldDescriptor, value: unknown): unknown {
  if (field.type === 'TYPE_BYTES') return Buffer.from(value as string, 'base64');
  if (/^TYPE_(S?FIXED|U?INT|SINT)64$/.test(field.type)) return String(value);
  return value;
}

function messageFrom(fullName: string, value: unknown): unknown {
  if (fullName === 'google.protobuf.Timestamp') {
    const ms = Date.parse(value as string);
    if (Number.isNaN(ms)) throw new Error(`protojson: ${JSON.stringify(value)} is not an RFC 3339 time`);
    const frac = /\.(\d{1,9})/.exec(value as string)?.[1] ?? '';
    return { seconds: String(Math.floor(ms / 1000)), nanos: Number(frac.padEnd(9, '0')) };
  }
  if (WRAPPERS.has(fullName)) return { value: scalarFrom(descriptor(fullName)!.type!.field![0]!, value) };
  if (fullName === 'google.protobuf.FieldMask') return { paths: (value as string).split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)) };
  return fromProtoJson(fullName, value as Record<string, unknown>);
}

/** The inverse of toProtoJson: a protojson object in the protos.ts convention, scalars and lists present, unset messages left out (as the filters expect). */
export function fromProtoJson(fullName: string, json: Record<string, unknown>): Record<string, unknown> {
  const fields = descriptor(fullName)?.type?.field;
  if (fields === undefined) throw new Error(`protojson: ${fullName} is not a message`);
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const v = json[field.name];
    if (v === undefined || v === null) {
      const d = defaultOf(field, fullName);
      if (d !== undefined) out[field.name] = d;
      continue;
    }
    const convert = (x: unknown) => (field.type === 'TYPE_MESSAGE' ? messageFrom(resolve(field.typeName, fullName), x) : scalarFrom(field, x));
    out[field.name] = field.label === 'LABEL_REPEATED' ? (v as unknown[]).map(convert) : convert(v);
  }
  return out;
}
