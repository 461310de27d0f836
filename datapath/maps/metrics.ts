// cilium_metrics: per-CPU packet and byte counters by reason and direction.
import type { PolicyDirection } from '../types.js';
import { at, type StructLayout } from './layout.js';

export const METRICS_KEY_LAYOUT = {
  struct: 'metrics_key',
  size: 8,
  members: { reason: at(0, 1), dir: at(1, 1), line: at(2, 2), file: at(4, 1), reserved: at(5, 3) },
} as const satisfies StructLayout;

export const METRICS_VALUE_LAYOUT = {
  struct: 'metrics_value',
  size: 16,
  members: { count: at(0, 8), bytes: at(8, 8) },
} as const satisfies StructLayout;

export interface MetricsKey {
  reason: number;
  direction: PolicyDirection | 'unknown';
  /** Source line and file id of the drop site (0 for forwards). */
  line: number;
  file: number;
}

export interface Counter {
  count: number;
  bytes: number;
}

/** Reason 0 counts forwarded packets; 130 and up are upstream drop reasons. */
export const REASON_FORWARDED = 0;

const K = METRICS_KEY_LAYOUT.members;
const V = METRICS_VALUE_LAYOUT.members;

const DIRECTIONS: Record<number, PolicyDirection> = { 1: 'ingress', 2: 'egress' };

export function decodeMetricsKey(buf: Buffer): MetricsKey {
  return {
    reason: buf.readUInt8(K.reason.offset),
    direction: DIRECTIONS[buf.readUInt8(K.dir.offset) & 0x3] ?? 'unknown',
    line: buf.readUInt16LE(K.line.offset),
    file: buf.readUInt8(K.file.offset),
  };
}

/** Sum of the per-CPU slots of one key. */
export function sumPerCpu(values: readonly Buffer[]): Counter {
  let count = 0n;
  let bytes = 0n;
  for (const v of values) {
    count += v.readBigUInt64LE(V.count.offset);
    bytes += v.readBigUInt64LE(V.bytes.offset);
  }
  return { count: Number(count), bytes: Number(bytes) };
}
