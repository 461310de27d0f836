// Every libbpf failure surfaces as a BpfError naming the operation, the object it was applied to
// (map name, pin path, program name, ifindex) and the errno libbpf reported.
import { fn, lastErrno, type Handle } from './native.js';

export class BpfError extends Error {
  readonly errno: number;
  readonly op: string;
  readonly object: string;

  /** `detail` (e.g. the verifier log tail) is appended on its own line after the errno. */
  constructor(errno: number, op: string, object: string, detail?: string) {
    const head = `${op} ${object}: ${strerror(errno)} (errno ${errno})`;
    super(detail ? `${head}\n${detail}` : head);
    this.name = 'BpfError';
    this.errno = errno;
    this.op = op;
    this.object = object;
  }
}

// libbpf_strerror also knows libbpf's own codes (LIBBPF_ERRNO__*, 4000 and up).
export function strerror(errno: number): string {
  const buf = Buffer.alloc(128);
  fn.strerror(errno, buf, buf.length);
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end < 0 ? buf.length : end);
}

/** Returns a non-negative libbpf result; a negative one is -errno and becomes a BpfError. */
export function check(ret: number, op: string, object: string): number {
  if (ret < 0) throw new BpfError(-ret, op, object);
  return ret;
}

/** Returns a libbpf pointer result; null means failure with errno set. */
export function checkHandle(handle: Handle | null, op: string, object: string): Handle {
  if (handle === null) throw new BpfError(lastErrno() || EINVAL, op, object);
  return handle;
}

/** A failed Node fs call on a bpffs path as a BpfError (Node reports errno negated). */
export function fromNodeError(err: unknown, op: string, object: string): BpfError {
  const errno = (err as NodeJS.ErrnoException).errno;
  return new BpfError(errno === undefined ? EINVAL : Math.abs(errno), op, object, errno === undefined ? String(err) : undefined);
}

export const ENOENT = 2;
export const EINVAL = 22;
export const EEXIST = 17;
export const ENODEV = 19;
export const ENOSPC = 28;
export const EOPNOTSUPP = 95;
/** Kernel-internal "operation not supported" that bpf(2) leaks for missing map ops. */
export const ENOTSUPP = 524;
