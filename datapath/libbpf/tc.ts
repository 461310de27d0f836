// tc clsact attachment through libbpf's netlink helpers. Filters are kernel state: they stay
// attached after this process exits, which is what lets a restarted agent adopt them.
import koffi from 'koffi';
import { check, EEXIST, EINVAL, ENOENT } from './errors.js';
import { withLibbpfWarnings } from './log.js';
import { fn, TcHook, TcOpts } from './native.js';

/**
 * The tc hook of a device: tc-ingress sees what the device receives, tc-egress what it sends. On a
 * pod's host veth that is the pod's egress and ingress respectively, hence the distinct name and
 * literals from the policy direction (datapath/types.ts PolicyDirection).
 */
export type TcAttachPoint = 'tc-ingress' | 'tc-egress';

export interface TcFilter {
  ifindex: number;
  hook: TcAttachPoint;
  /** Filter handle and priority; both default to 1. */
  handle?: number;
  priority?: number;
}

// enum bpf_tc_attach_point and BPF_TC_F_REPLACE in libbpf.h.
const ATTACH_POINT: Record<TcAttachPoint, number> = { 'tc-ingress': 1, 'tc-egress': 2 };
const ATTACH_POINT_CLSACT = ATTACH_POINT['tc-ingress'] | ATTACH_POINT['tc-egress'];
const TC_F_REPLACE = 1;

const hookSize = koffi.sizeof(TcHook);
const optsSize = koffi.sizeof(TcOpts);

function hook(ifindex: number, attachPoint: number): Record<string, number> {
  return { sz: hookSize, ifindex, attach_point: attachPoint, parent: 0 };
}

/**
 * Runs one libbpf netlink call. Errnos in `absent` mean "nothing there" and yield undefined; other
 * failures throw with the kernel's extack message, which libbpf prints, in the BpfError.
 */
function netlink(call: () => number, op: string, object: string, absent: number[] = []): number | undefined {
  return withLibbpfWarnings(() => {
    const ret = call();
    if (absent.includes(-ret)) return undefined;
    return check(ret, op, object);
  }, { quiet: true });
}

function describe(f: TcFilter): string {
  return `ifindex ${f.ifindex} ${f.hook} handle ${f.handle ?? 1} priority ${f.priority ?? 1}`;
}

/** Creates the clsact qdisc if missing and attaches, replacing a filter with the same handle/priority. */
export function tcAttach(o: TcFilter & { progFd: number }): void {
  netlink(() => fn.tcHookCreate(hook(o.ifindex, ATTACH_POINT[o.hook])), 'create clsact hook on', `ifindex ${o.ifindex}`, [EEXIST]);
  const opts = { sz: optsSize, prog_fd: o.progFd, flags: TC_F_REPLACE, prog_id: 0, handle: o.handle ?? 1, priority: o.priority ?? 1 };
  netlink(() => fn.tcAttach(hook(o.ifindex, ATTACH_POINT[o.hook]), opts), `attach program fd ${o.progFd} at`, describe(o));
}

export function tcDetach(o: TcFilter): void {
  const opts = { sz: optsSize, prog_fd: 0, flags: 0, prog_id: 0, handle: o.handle ?? 1, priority: o.priority ?? 1 };
  netlink(() => fn.tcDetach(hook(o.ifindex, ATTACH_POINT[o.hook]), opts), 'detach tc filter', describe(o));
}

/** The id of the program attached as this filter, or undefined when there is none (or no clsact qdisc). */
export function tcQuery(o: TcFilter): number | undefined {
  const opts = { sz: optsSize, prog_fd: 0, flags: 0, prog_id: 0, handle: o.handle ?? 1, priority: o.priority ?? 1 };
  // A missing qdisc or filter chain comes back as EINVAL, a missing filter in a chain as ENOENT.
  const found = netlink(() => fn.tcQuery(hook(o.ifindex, ATTACH_POINT[o.hook]), opts), 'query tc filter', describe(o), [ENOENT, EINVAL]);
  return found === undefined ? undefined : opts.prog_id;
}

/** Removes the clsact qdisc and with it every filter on both directions; absent qdisc is fine. */
export function tcHookDestroy(ifindex: number): void {
  // No qdisc ever: ENOENT; a clsact qdisc removed before: EINVAL ("Invalid handle").
  netlink(() => fn.tcHookDestroy(hook(ifindex, ATTACH_POINT_CLSACT)), 'destroy clsact hook on', `ifindex ${ifindex}`, [ENOENT, EINVAL]);
}
