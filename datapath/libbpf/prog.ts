// Loaded BPF programs by fd: pin, open pinned, and BPF_PROG_TEST_RUN.
import koffi from 'koffi';
import { BpfError, check, EINVAL } from './errors.js';
import { closeFd } from './fd.js';
import { isTruncationOf } from './map.js';
import { fn, ProgInfoPrefix, TestRunOpts } from './native.js';

export interface TestRunOptions {
  data: Buffer;
  /** Runs the program this many times; durationNs is the mean per run. */
  repeat?: number;
  /** Room for the packet as the program leaves it; defaults to the input size plus 256 bytes. */
  dataOutSize?: number;
  /** Program context to start from (ctx_in), e.g. a struct __sk_buff with ifindex set. */
  ctx?: Buffer;
}

export interface TestRunResult {
  retval: number;
  durationNs: number;
  dataOut: Buffer;
}

// The kernel refuses test runs on inputs shorter than an Ethernet header.
const MIN_TEST_RUN_DATA = 14;

export class BpfProgram {
  readonly fd: number;
  readonly name: string;
  readonly id: number;
  private closed = false;

  /** Takes ownership of `fd`; `name` restores a name the kernel cut at 15 characters. */
  constructor(fd: number, name?: string) {
    const buf = Buffer.alloc(koffi.sizeof(ProgInfoPrefix));
    try {
      check(fn.objGetInfoByFd(fd, buf, [buf.length]), 'get info of program', name ?? `fd ${fd}`);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    const info = koffi.decode(buf, ProgInfoPrefix) as { id: number; name: string };
    this.fd = fd;
    this.id = info.id;
    this.name = name !== undefined && isTruncationOf(info.name, name) ? name : info.name;
  }

  static openPinned(pinPath: string): BpfProgram {
    return new BpfProgram(check(fn.objGet(pinPath), 'open pinned program', pinPath));
  }

  pin(pinPath: string): void {
    check(fn.objPin(this.fd, pinPath), `pin program ${this.name} at`, pinPath);
  }

  testRun(o: TestRunOptions): TestRunResult {
    if (o.data.length < MIN_TEST_RUN_DATA) {
      throw new BpfError(EINVAL, 'test run program', this.name, `packet is ${o.data.length} bytes, at least ${MIN_TEST_RUN_DATA} needed`);
    }
    const dataOut = Buffer.alloc(o.dataOutSize ?? o.data.length + 256);
    const opts: Record<string, unknown> = {
      sz: koffi.sizeof(TestRunOpts),
      data_in: o.data,
      data_size_in: o.data.length,
      data_out: dataOut,
      data_size_out: dataOut.length,
      repeat: o.repeat ?? 1,
      ...(o.ctx && { ctx_in: o.ctx, ctx_size_in: o.ctx.length }),
    };
    check(fn.testRun(this.fd, opts), 'test run program', this.name);
    return {
      retval: opts.retval as number,
      durationNs: opts.duration as number,
      dataOut: dataOut.subarray(0, opts.data_size_out as number),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeFd(this.fd);
  }
}
