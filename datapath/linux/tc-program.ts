// One tc filter of ours: the datapath's programs sit at upstream's handle and priority, and a
// program already there is replaced in place, so no packet passes unchecked in between.
import type { BpfProgram } from '../libbpf/prog.js';
import { tcAttach, tcQuery, type TcAttachPoint } from '../libbpf/tc.js';

export const TC_HANDLE = 1;
export const TC_PRIORITY = 1;

/** What putting `prog` on the hook did: nothing (it was there), a replacement, or a first attach. */
export type AttachOutcome = 'unchanged' | 'replaced' | 'attached';

export function putProgram(ifindex: number, hook: TcAttachPoint, prog: BpfProgram): AttachOutcome {
  const filter = { ifindex, hook, handle: TC_HANDLE, priority: TC_PRIORITY };
  const current = tcQuery(filter);
  if (current === prog.id) return 'unchanged';
  tcAttach({ ...filter, progFd: prog.fd });
  return current === undefined ? 'attached' : 'replaced';
}
