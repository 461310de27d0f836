// Flow uuids: random version-4 uuids per observer run whose last 48 bits count up. They are as
// unique as random ones across nodes and restarts (74 random bits per run), cost no entropy per
// flow, and the history stores each in a byte or two (the counter's delta).
import { randomBytes } from 'node:crypto';

const COUNTER_HEX = 12;

export class FlowIds {
  private readonly prefix: string;
  private next = 0;

  constructor(random: Buffer = randomBytes(10)) {
    if (random.length < 10) throw new Error(`flow ids: ${random.length} random bytes, 10 needed`);
    const b = Buffer.from(random.subarray(0, 10));
    b[6] = (b[6]! & 0x0f) | 0x40; // version 4
    b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
    const hex = b.toString('hex');
    this.prefix = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-`;
  }

  /** The next uuid of this run. */
  take(): string {
    return this.prefix + (this.next++).toString(16).padStart(COUNTER_HEX, '0');
  }
}
