// cilium_metrics: per-CPU packet and byte counters by reason and direction.
import type { Direction } from '../types.js';
import type { StructLayout } from './layout.js';

export const METRICS_KEY_LAYOUT: StructLayout = {
  struct: 'metrics_key',
  size: 8,
  members: { reason: 0, dir: 1, line: 2, file: 4, reserved: 5 },
};

export const METRICS_VALUE_LAYOUT: StructLayout = {
  struct: 'metrics_value',
  size: 16,
  members: { count: 0, bytes: 8 },
};

/** Reason 0 counts forwarded packets; 130 and up are upstream drop reasons. */
export const REASON_FORWARDED = 0;

export interface MetricsKey {
  reason: number;
  direction: Direction | 'unknown';
  /** Source line and file id of the drop site (0 for forwards). */
  line: number;
  file: number;
}

export interface Counter {
  count: number;
  bytes: number;
}

const DIRECTIONS: Record<number, Direction> = { 1: 'ingress', 2: 'egress' };

export function decodeMetricsKey(buf: Buffer): MetricsKey {
  return {
    reason: buf.readUInt8(0),
    direction: DIRECTIONS[buf.readUInt8(1) & 0x3] ?? 'unknown',
    line: buf.readUInt16LE(2),
    file: buf.readUInt8(4),
  };
}

/** Sum of the per-CPU slots of one key. */
export function sumPerCpu(values: readonly Buffer[]): Counter {
  let count = 0n;
  let bytes = 0n;
  for (const v of values) {
    count += v.readBigUInt64LE(0);
    bytes += v.readBigUInt64LE(8);
  }
  return { count: Number(count), bytes: Number(bytes) };
}
