// Consumer of a BPF ring buffer map through libbpf's ring_buffer, delivering each record to a JS
// callback as a Buffer copy (the ring memory is reused once the callback returns).
import koffi from 'koffi';
import { BpfError, checkHandle, EINVAL } from './errors.js';
import type { BpfMap } from './map.js';
import { fn, RingBufferOpts, RingBufferSampleFnPtr, type Handle } from './native.js';

// Returned from the sample callback to make libbpf stop; the record that failed counts as consumed,
// the ones behind it stay in the ring.
const CALLBACK_FAILED = -EINVAL;

export class RingBuffer {
  private handle: Handle | undefined;
  private readonly callback: unknown;
  private callbackError: Error | undefined;
  private busy = false;
  private readonly mapName: string;

  constructor(map: BpfMap, onRecord: (data: Buffer) => void) {
    if (map.type !== 'ringbuf') throw new BpfError(EINVAL, 'open ring buffer on', `map ${map.name} of type ${map.type}`);
    this.mapName = map.name;
    this.callback = koffi.register((_ctx: unknown, data: unknown, size: number | bigint) => {
      try {
        // koffi.view aliases the ring; Buffer.from of a Uint8Array copies, one of an ArrayBuffer would not.
        onRecord(Buffer.from(new Uint8Array(koffi.view(data, Number(size)))));
        return 0;
      } catch (err) {
        this.callbackError ??= err instanceof Error ? err : new Error(`ring buffer ${map.name} record handler threw ${String(err)}`);
        return CALLBACK_FAILED;
      }
    }, RingBufferSampleFnPtr);
    try {
      this.handle = checkHandle(fn.ringBufferNew(map.fd, this.callback, null, { sz: koffi.sizeof(RingBufferOpts) }), 'open ring buffer on map', map.name);
    } catch (err) {
      koffi.unregister(this.callback as bigint);
      throw err;
    }
  }

  /** Waits up to timeoutMs (blocking this thread) and returns the number of records delivered. */
  poll(timeoutMs: number): number {
    const handle = this.enter('poll');
    try {
      return this.settle(fn.ringBufferPoll(handle, timeoutMs), 'poll');
    } finally {
      this.busy = false;
    }
  }

  /**
   * Like poll() but waits on a worker thread, so the event loop keeps running; records are still
   * delivered on the main thread. No other call on this RingBuffer may overlap it.
   */
  pollAsync(timeoutMs: number): Promise<number> {
    const handle = this.enter('poll');
    return new Promise<number>((resolve, reject) => {
      fn.ringBufferPoll.async(handle, timeoutMs, (err: unknown, ret: number) => {
        this.busy = false;
        const outcome = err instanceof Error ? err : this.outcome(ret, 'poll');
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      });
    });
  }

  /** Delivers every record already in the ring without waiting. */
  consume(): number {
    const handle = this.enter('consume');
    try {
      return this.settle(fn.ringBufferConsume(handle), 'consume');
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    if (this.handle === undefined) return;
    if (this.busy) throw new BpfError(EINVAL, 'close ring buffer during poll of map', this.mapName);
    fn.ringBufferFree(this.handle);
    this.handle = undefined;
    koffi.unregister(this.callback as bigint);
  }

  private enter(op: string): Handle {
    if (this.handle === undefined) throw new BpfError(EINVAL, `${op} closed ring buffer of map`, this.mapName);
    if (this.busy) throw new BpfError(EINVAL, `${op} ring buffer already polling map`, this.mapName);
    this.busy = true;
    return this.handle;
  }

  private settle(ret: number, op: string): number {
    const outcome = this.outcome(ret, op);
    if (outcome instanceof Error) throw outcome;
    return outcome;
  }

  /** A record handler's exception takes precedence over the error libbpf reports for it. */
  private outcome(ret: number, op: string): number | Error {
    const failure = this.callbackError;
    this.callbackError = undefined;
    if (failure !== undefined) return failure;
    return ret < 0 ? new BpfError(-ret, `${op} ring buffer of map`, this.mapName) : ret;
  }
}
