// File descriptors handed out by libbpf. Wrappers own a duplicate so that closing a BpfObject does
// not pull the fd from under a BpfMap or BpfProgram taken from it.
import { BpfError } from './errors.js';
import { F_DUPFD_CLOEXEC, fn, lastErrno } from './native.js';

export function dupFd(fd: number, what: string): number {
  const dup = fn.fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0);
  if (dup < 0) throw new BpfError(lastErrno(), 'dup fd of', what);
  return dup;
}

export function closeFd(fd: number): void {
  if (fd >= 0) fn.close(fd);
}
