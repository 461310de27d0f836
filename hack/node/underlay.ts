// The local cluster's network (contracts9 §A): a bridge in the root netns (the host, 172.30.0.1)
// that every node netns and the "world" netns hang off by a veth. The names are host-wide, so one
// cluster per machine; teardown goes by these names and by the namespaces processes live in, so it
// also works when the `up` that made them was killed before it recorded anything.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const UNDERLAY = { bridge: 'cts-underlay', hostIP: '172.30.0.1', cidr: '172.30.0.0/24', prefixLength: 24 } as const;
export const WORLD = { netns: 'cts-world', ip: '198.51.100.10', hostIP: '198.51.100.1', prefixLength: 24, httpPort: 80 } as const;
const NETNS_DIR = '/run/netns';
const NODE_NETNS_PREFIX = 'cts-node-';

export const nodeName = (index: number): string => `node-${index}`;
export const nodeNetnsName = (index: number): string => `${NODE_NETNS_PREFIX}${index}`;
export const netnsPath = (name: string): string => path.join(NETNS_DIR, name);
export const nodeIP = (index: number): string => `172.30.0.${10 + index}`;

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (err) {
    throw new Error(`ip ${args.join(' ')}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err });
  }
}

export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

/** The bridge with the host's addresses on both the node and the world subnet. */
export async function createBridge(): Promise<void> {
  await ip(['link', 'add', UNDERLAY.bridge, 'type', 'bridge']);
  await ip(['addr', 'add', `${UNDERLAY.hostIP}/${UNDERLAY.prefixLength}`, 'dev', UNDERLAY.bridge]);
  await ip(['addr', 'add', `${WORLD.hostIP}/${WORLD.prefixLength}`, 'dev', UNDERLAY.bridge]);
  await ip(['link', 'set', UNDERLAY.bridge, 'up']);
}

/**
 * A netns whose eth0 (address/prefix, default route via gateway) is a veth whose other end, named
 * like the netns, is a port of the bridge.
 */
export async function createAttachedNetns(netns: string, address: string, gateway: string): Promise<void> {
  await ip(['netns', 'add', netns]);
  await ip(['link', 'add', netns, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', netns]);
  await ip(['link', 'set', netns, 'master', UNDERLAY.bridge, 'up']);
  await ip(['-n', netns, 'addr', 'add', address, 'dev', 'eth0']);
  await ip(['-n', netns, 'link', 'set', 'lo', 'up']);
  await ip(['-n', netns, 'link', 'set', 'eth0', 'up']);
  await ip(['-n', netns, 'route', 'add', 'default', 'via', gateway]);
}

function inodeOf(file: string): number | undefined {
  try {
    return statSync(file).ino;
  } catch {
    return undefined;
  }
}

/** Pids whose namespace of `kind` (net, mnt) is the one with that nsfs inode. */
export function pidsInNamespace(kind: 'net' | 'mnt', inode: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/${kind}`) === `${kind}:[${inode}]`) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return pids;
}

/** SIGKILLs every process in the namespace until none is left. */
export async function killNamespace(kind: 'net' | 'mnt', inode: number, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = pidsInNamespace(kind, inode);
    if (pids.length === 0) return;
    if (Date.now() > deadline) throw new Error(`${what}: processes ${pids.join(', ')} still running ${timeoutMs / 1000}s after SIGKILL`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(50);
  }
}

/**
 * Kills what still runs in the netns and deletes it. Its veth is deleted first: the kernel frees a
 * netns (and with it the veth) some time after its last user left, which would let the host end
 * outlive `down`.
 */
export async function removeNetns(netns: string): Promise<void> {
  const inode = inodeOf(netnsPath(netns));
  if (inode !== undefined) await killNamespace('net', inode, `netns ${netns}`);
  if (linkExists(netns)) await ip(['link', 'del', netns]);
  if (inode !== undefined) await ip(['netns', 'del', netns]);
}

/** Every node netns (or its host veth) a cluster made, whatever its node count was. */
export function nodeNetnsNames(): string[] {
  const names = [...(existsSync(NETNS_DIR) ? readdirSync(NETNS_DIR) : []), ...readdirSync('/sys/class/net')];
  return [...new Set(names.filter((n) => n.startsWith(NODE_NETNS_PREFIX)))];
}

/** Names an earlier cluster (or another checkout's) still holds: `up` refuses while any is left. */
export function underlayLeftovers(): string[] {
  return [
    ...(linkExists(UNDERLAY.bridge) ? [`bridge ${UNDERLAY.bridge}`] : []),
    ...nodeNetnsNames().map((n) => `netns ${n}`),
    ...(existsSync(netnsPath(WORLD.netns)) || linkExists(WORLD.netns) ? [`netns ${WORLD.netns}`] : []),
  ];
}

export async function removeUnderlay(): Promise<void> {
  const errors: string[] = [];
  for (const netns of [...nodeNetnsNames(), WORLD.netns]) await removeNetns(netns).catch((err: unknown) => errors.push((err as Error).message));
  if (linkExists(UNDERLAY.bridge)) await ip(['link', 'del', UNDERLAY.bridge]).catch((err: unknown) => errors.push((err as Error).message));
  if (errors.length > 0) throw new Error(`underlay: ${errors.join('; ')}`);
}
