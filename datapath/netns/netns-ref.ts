// A network namespace is named (/run/netns/<name>, what `ip netns` manages) or given by a path
// (a bind mount such as /var/run/netns/cni-1234, or /proc/<pid>/ns/net), as a CNI plugin gets it
// from the runtime. iproute2's `-n` takes names only, so a path is entered with nsenter instead.
import { isAbsolute, normalize } from 'node:path';
import { InvalidNetworkValueError, assertNetnsName } from './validate.js';

export type NetnsRef = string | { path: string };

// Letters, digits and "_.-/": a path that nsenter cannot read as an option or a second argument.
const NETNS_PATH = /^\/[A-Za-z0-9_./-]*$/;

export function assertNetnsPath(p: string): string {
  if (!isAbsolute(p) || !NETNS_PATH.test(p) || normalize(p) !== p || p.length > 4096) {
    throw new InvalidNetworkValueError('netns path', p, 'must be a normalized absolute path of letters, digits, "_", ".", "-" and "/"');
  }
  return p;
}

/** " in netns <name>" or " in netns at <path>", for error contexts. */
export function inNetns(ref: NetnsRef | undefined): string {
  if (ref === undefined) return '';
  return typeof ref === 'string' ? ` in netns ${ref}` : ` in netns at ${ref.path}`;
}

/** The command line that runs `file args...` inside `ref` (validated; no shell involved). */
export function netnsCommand(ref: NetnsRef, file: string, args: readonly string[]): { file: string; args: string[] } {
  if (typeof ref === 'string') return { file: 'ip', args: ['netns', 'exec', assertNetnsName(ref), file, ...args] };
  return { file: 'nsenter', args: [`--net=${assertNetnsPath(ref.path)}`, '--', file, ...args] };
}

/** `ip args...` inside `ref`: `ip -n <name>` for a named netns, nsenter for a path. */
export function ipCommand(ref: NetnsRef | undefined, args: readonly string[]): { file: string; args: string[] } {
  if (ref === undefined) return { file: 'ip', args: [...args] };
  if (typeof ref === 'string') return { file: 'ip', args: ['-n', assertNetnsName(ref), ...args] };
  return netnsCommand(ref, 'ip', args);
}
