// Varint (LEB128) writing and reading for the history's block encoding. Values go up to 2^53:
// arithmetic, not 32-bit bit operations, carries the high groups.

export class ByteWriter {
  private buf: Buffer;
  pos = 0;

  constructor(initial = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** A non-negative integer below 2^53. */
  uvarint(n: number): void {
    this.room(8);
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  /** Any integer of magnitude below 2^52, small magnitudes short. */
  varint(n: number): void {
    this.uvarint(n < 0 ? -2 * n - 1 : 2 * n);
  }

  string(s: string): void {
    const len = Buffer.byteLength(s);
    this.uvarint(len);
    this.room(len);
    this.pos += this.buf.write(s, this.pos);
  }

  bytes(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** What was written (a view: valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

export class ByteReaderError extends Error {
  constructor(reason: string) {
    super(`flow history block: ${reason}`);
    this.name = 'ByteReaderError';
  }
}

export class ByteReader {
  pos = 0;

  constructor(private readonly buf: Buffer) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  uvarint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      if (this.pos >= this.buf.length) throw new ByteReaderError(`varint runs past the end at byte ${this.pos}`);
      const b = this.buf[this.pos++]!;
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
      if (scale > 2 ** 56) throw new ByteReaderError(`varint longer than 8 bytes at byte ${this.pos}`);
    }
  }

  varint(): number {
    const z = this.uvarint();
    return z % 2 === 1 ? -(z + 1) / 2 : z / 2;
  }

  string(): string {
    const len = this.uvarint();
    if (this.pos + len > this.buf.length) throw new ByteReaderError(`string of ${len} bytes runs past the end at byte ${this.pos}`);
    const s = this.buf.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
}
