// Each agent's flow history beyond the ring: flows go to a directory of segment files, each a run
// of blocks (header + deflated block of codec.ts). Segments rotate at a size, the oldest go when
// the directory passes its size limit or their newest flow passes the age limit, and a new
// history opening the same directory reads what an earlier agent wrote.
//
// Appending never waits: each flow is encoded into the block being filled as it comes (the block
// holds bytes, not flow objects the garbage collector would have to carry), a full block is
// deflated on the thread pool and handed to a chain that writes blocks in order. When that chain
// falls `maxPendingBlocks` behind (a slow disk) a new block is dropped from the history, counted
// and logged; the ring and the live stream never see it.
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, rmSync } from 'node:fs';
import { open as openAsync, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { crc32, deflateRaw, inflateRaw } from 'node:zlib';
import { type Flow, timestampMs } from '../../../hubble/flow-types.js';
import type { Logger } from '../../../runtime/log.js';
import { BlockEncoder, decodeFlows } from './codec.js';

const deflateAsync = promisify(deflateRaw);
const inflateAsync = promisify(inflateRaw);

const MAGIC = 0x31424648; // "HFB1" little-endian
export const BLOCK_HEADER_SIZE = 40;
const SEGMENT_SUFFIX = '.hfl';
const SEGMENT_NAME = /^(\d{12})\.hfl$/;
// Logged at most this often while the disk loses flows: the counter has every one.
const LOST_LOG_INTERVAL_MS = 10_000;
// zlib's default: on a block of 8192 flows about 0.4 µs per flow more than level 1 (on the thread
// pool) for some 8% fewer bytes, so the size limit keeps more history.
const DEFLATE_LEVEL = 6;

export interface FlowHistoryOptions {
  dir: string;
  maxBytes: number;
  /** 0: no age limit. */
  maxAgeMs: number;
  logger: Logger;
  /** Flows per block. */
  blockFlows?: number;
  /** A block with fewer flows is written after this long. */
  flushMs?: number;
  /** Blocks that may wait for the disk before new ones are lost. */
  maxPendingBlocks?: number;
  /** Segment size at which the next block starts a new segment (default maxBytes/8, 64 MiB at most). */
  segmentBytes?: number;
  onLost?: (flows: number) => void;
  onWritten?: (flows: number) => void;
  now?: () => number;
  /** The disk write, replaceable to make the disk slow in tests. */
  write?: (file: FileHandle, data: Buffer) => Promise<void>;
}

interface BlockRef {
  segment: Segment;
  offset: number;
  length: number;
  count: number;
  minMs: number;
  maxMs: number;
}

interface Segment {
  seq: number;
  file: string;
  bytes: number;
  blocks: BlockRef[];
}

interface PendingBlock {
  /** The block uncompressed (codec.ts); readers decode it until it is on disk. */
  raw: Buffer;
  count: number;
  minMs: number;
  maxMs: number;
}

export interface HistoryStats {
  segments: number;
  bytes: number;
  flows: number;
  lostFlows: number;
  writtenFlows: number;
}

function segmentName(seq: number): string {
  return `${String(seq).padStart(12, '0')}${SEGMENT_SUFFIX}`;
}

function header(count: number, payload: Buffer, rawLength: number, minMs: number, maxMs: number): Buffer {
  const h = Buffer.alloc(BLOCK_HEADER_SIZE);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(count, 4);
  h.writeUInt32LE(payload.length, 8);
  h.writeUInt32LE(rawLength, 12);
  h.writeUInt32LE(crc32(payload), 16);
  h.writeDoubleLE(minMs, 24);
  h.writeDoubleLE(maxMs, 32);
  return h;
}

async function writeAll(file: FileHandle, data: Buffer): Promise<void> {
  let done = 0;
  while (done < data.length) done += (await file.write(data, done, data.length - done)).bytesWritten;
}

export class FlowHistory {
  private readonly segments: Segment[] = [];
  private readonly current: BlockEncoder;
  /** Sealed blocks not yet on disk, oldest first; readers see them from memory. */
  private readonly pending: PendingBlock[] = [];
  // Writes wait for open(): appends before it only gather.
  private chain: Promise<void>;
  private markOpen!: () => void;
  private file: FileHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lostFlows = 0;
  private writtenFlows = 0;
  private lastLostLog = -Infinity;
  private readonly blockFlows: number;
  private readonly maxPending: number;
  private readonly segmentBytes: number;
  private readonly now: () => number;
  private readonly writeData: (file: FileHandle, data: Buffer) => Promise<void>;
  private closed = false;

  constructor(private readonly opts: FlowHistoryOptions) {
    this.blockFlows = opts.blockFlows ?? 8192;
    this.current = new BlockEncoder(this.blockFlows);
    this.maxPending = opts.maxPendingBlocks ?? 8;
    this.segmentBytes = opts.segmentBytes ?? Math.max(1 << 16, Math.min(64 << 20, Math.floor(opts.maxBytes / 8)));
    this.now = opts.now ?? Date.now;
    this.writeData = opts.write ?? writeAll;
    this.chain = new Promise<void>((resolve) => (this.markOpen = resolve));
  }

  /** Reads the segments already in the directory and starts a new one; appends may come before it resolves. */
  async open(): Promise<void> {
    mkdirSync(this.opts.dir, { recursive: true });
    const names = readdirSync(this.opts.dir)
      .filter((n) => SEGMENT_NAME.test(n))
      .sort();
    for (const name of names) this.segments.push(this.scan(Number(SEGMENT_NAME.exec(name)![1]), path.join(this.opts.dir, name)));
    await this.startSegment();
    this.markOpen();
    this.enforceLimits();
    this.timer = setInterval(() => this.seal(), this.opts.flushMs ?? 1000);
    this.timer.unref();
  }

  // A segment's block index from its headers; a torn last block (the agent died writing it) is cut off.
  private scan(seq: number, file: string): Segment {
    const seg: Segment = { seq, file, bytes: 0, blocks: [] };
    const fd = openSync(file, 'r+');
    try {
      const size = fstatSync(fd).size;
      const h = Buffer.alloc(BLOCK_HEADER_SIZE);
      let offset = 0;
      while (offset + BLOCK_HEADER_SIZE <= size) {
        readSync(fd, h, 0, BLOCK_HEADER_SIZE, offset);
        const length = h.readUInt32LE(8);
        if (h.readUInt32LE(0) !== MAGIC || offset + BLOCK_HEADER_SIZE + length > size) break;
        seg.blocks.push({ segment: seg, offset, length, count: h.readUInt32LE(4), minMs: h.readDoubleLE(24), maxMs: h.readDoubleLE(32) });
        offset += BLOCK_HEADER_SIZE + length;
      }
      if (offset < size) {
        this.opts.logger.warn('hubble history: cutting a torn block off a segment', { file, at: offset, size });
        ftruncateSync(fd, offset);
      }
      seg.bytes = offset;
    } finally {
      closeSync(fd);
    }
    return seg;
  }

  private async startSegment(): Promise<void> {
    const seq = (this.segments.at(-1)?.seq ?? 0) + 1;
    const file = path.join(this.opts.dir, segmentName(seq));
    await this.file?.close();
    this.file = await openAsync(file, 'a');
    this.segments.push({ seq, file, bytes: 0, blocks: [] });
  }

  append(flow: Flow): void {
    try {
      this.current.add(flow);
    } catch (err) {
      // Only this flow misses from the history; the block stays readable.
      this.lostFlows++;
      this.opts.onLost?.(1);
      this.opts.logger.warn('hubble history: a flow could not be encoded; it is lost from the history', { uuid: flow.uuid, error: (err as Error).message });
      return;
    }
    if (this.current.count >= this.blockFlows) this.seal();
  }

  // The block being filled as it is now.
  private snapshot(): PendingBlock {
    const c = this.current;
    return { raw: c.finish(), count: c.count, minMs: c.minMs, maxMs: c.maxMs };
  }

  /** Hands the block being filled to the writer, or drops it when the writer is too far behind. */
  private seal(): void {
    const c = this.current;
    if (c.count === 0 || this.closed) return;
    if (this.pending.length >= this.maxPending) {
      this.lost(c.count);
      c.reset();
      return;
    }
    const block = this.snapshot();
    c.reset();
    this.pending.push(block);
    // Deflating on the thread pool at once leaves only the writes in line.
    const encoded = deflateAsync(block.raw, { level: DEFLATE_LEVEL }).then((payload) => ({ rawLength: block.raw.length, payload }));
    // Handled by the chain when its turn comes; until then the rejection must not count as unhandled.
    encoded.catch(() => undefined);
    this.chain = this.chain
      .then(async () => this.writeBlock(block, await encoded))
      .catch((err: Error) => {
        this.pending.splice(this.pending.indexOf(block), 1);
        this.lost(block.count);
        this.opts.logger.error('hubble history: writing a block failed; its flows are lost from the history', { dir: this.opts.dir, error: err.message });
      });
  }

  private lost(count: number): void {
    this.lostFlows += count;
    this.opts.onLost?.(count);
    const now = this.now();
    if (now - this.lastLostLog >= LOST_LOG_INTERVAL_MS) {
      this.lastLostLog = now;
      this.opts.logger.warn('hubble history: the disk falls behind; flows are lost from the history (not from the ring or live stream)', {
        dir: this.opts.dir,
        lostFlows: this.lostFlows,
        pendingBlocks: this.pending.length,
      });
    }
  }

  private async writeBlock(block: PendingBlock, { rawLength, payload }: { rawLength: number; payload: Buffer }): Promise<void> {
    let seg = this.segments.at(-1)!;
    if (seg.bytes > 0 && seg.bytes + BLOCK_HEADER_SIZE + payload.length > this.segmentBytes) {
      await this.startSegment();
      seg = this.segments.at(-1)!;
    }
    const data = Buffer.concat([header(block.count, payload, rawLength, block.minMs, block.maxMs), payload]);
    await this.writeData(this.file!, data);
    seg.blocks.push({ segment: seg, offset: seg.bytes, length: payload.length, count: block.count, minMs: block.minMs, maxMs: block.maxMs });
    seg.bytes += data.length;
    this.pending.splice(this.pending.indexOf(block), 1);
    this.writtenFlows += block.count;
    this.opts.onWritten?.(block.count);
    this.enforceLimits();
  }

  // The oldest closed segments go while the history is over its size, or their newest flow is past the age limit.
  private enforceLimits(): void {
    const cutoff = this.opts.maxAgeMs > 0 ? this.now() - this.opts.maxAgeMs : -Infinity;
    let total = this.segments.reduce((sum, s) => sum + s.bytes, 0);
    while (this.segments.length > 1) {
      const oldest = this.segments[0]!;
      const newest = oldest.blocks.reduce((max, b) => Math.max(max, b.maxMs), -Infinity);
      if (total <= this.opts.maxBytes && newest >= cutoff && oldest.blocks.length > 0) break;
      rmSync(oldest.file, { force: true });
      this.segments.shift();
      total -= oldest.bytes;
    }
    // The open segment alone past the age limit: its blocks are all older than the cutoff.
    const only = this.segments[0];
    if (this.segments.length === 1 && only !== undefined && only.blocks.length > 0 && only.blocks.every((b) => b.maxMs < cutoff)) {
      this.chain = this.chain
        .then(() => this.rotateAway(only))
        .catch((err: Error) => {
          this.opts.logger.error('hubble history: could not rotate away an aged segment', { file: only.file, error: err.message });
        });
    }
  }

  private async rotateAway(seg: Segment): Promise<void> {
    if (this.segments[0] !== seg || this.segments.length !== 1) return;
    await this.startSegment();
    rmSync(seg.file, { force: true });
    this.segments.shift();
  }

  /**
   * Flows with `sinceMs` <= time <= `untilMs` (either may be absent), oldest first, a block at a
   * time: from the disk, then the blocks waiting for it, then the one being filled. What is
   * appended after the call is not read.
   */
  async *read(sinceMs: number | undefined, untilMs: number | undefined, signal?: AbortSignal): AsyncGenerator<Flow[]> {
    const hi = untilMs ?? Infinity;
    // Blocks past the age limit are gone for readers before their segment is deleted.
    const oldest = this.opts.maxAgeMs > 0 ? this.now() - this.opts.maxAgeMs : -Infinity;
    const lo = Math.max(sinceMs ?? -Infinity, oldest);
    const onDisk = this.segments.flatMap((s) => s.blocks).filter((b) => b.maxMs >= lo && b.minMs <= hi);
    const c = this.current;
    const inMemory = [...this.pending, ...(c.count > 0 ? [this.snapshot()] : [])].filter((b) => b.maxMs >= lo && b.minMs <= hi);
    const within = (flows: Flow[], minMs: number, maxMs: number) =>
      minMs >= lo && maxMs <= hi
        ? flows
        : flows.filter((f) => {
            const ms = timestampMs(f.time);
            return ms >= lo && ms <= hi;
          });
    for (const ref of onDisk) {
      if (signal?.aborted) return;
      yield within(await this.readBlock(ref), ref.minMs, ref.maxMs);
    }
    for (const block of inMemory) {
      if (signal?.aborted) return;
      yield within(decodeFlows(block.raw), block.minMs, block.maxMs);
    }
  }

  private async readBlock(ref: BlockRef): Promise<Flow[]> {
    let file: FileHandle;
    try {
      file = await openAsync(ref.segment.file, 'r');
    } catch (err) {
      // The segment aged out while this reader walked the history.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    try {
      const buf = Buffer.alloc(BLOCK_HEADER_SIZE + ref.length);
      await file.read(buf, 0, buf.length, ref.offset);
      const payload = buf.subarray(BLOCK_HEADER_SIZE);
      if (crc32(payload) !== buf.readUInt32LE(16)) throw new Error(`hubble history: ${ref.segment.file} block at ${ref.offset}: checksum mismatch`);
      return decodeFlows(await inflateAsync(payload));
    } finally {
      await file.close();
    }
  }

  stats(): HistoryStats {
    return {
      segments: this.segments.length,
      bytes: this.segments.reduce((sum, s) => sum + s.bytes, 0),
      flows: this.segments.reduce((sum, s) => sum + s.blocks.reduce((n, b) => n + b.count, 0), 0),
      lostFlows: this.lostFlows,
      writtenFlows: this.writtenFlows,
    };
  }

  /** Writes what is gathered and waits for the disk. */
  async flush(): Promise<void> {
    this.seal();
    await this.chain;
  }

  async close(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    await this.flush();
    this.closed = true;
    await this.file?.close();
    this.file = undefined;
  }
}
