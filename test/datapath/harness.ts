// What the namespace and restart tests share: a scratch bpffs directory per test run, the
// endpoint a pod becomes, ping, and the LinuxDatapath they drive.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { ensureBpffs, isBpffs } from '../../datapath/libbpf/bpffs.js';
import type { Pod, PodNetwork } from '../../datapath/netns/pod-network.js';
import { CommandError } from '../../datapath/netns/run.js';
import type { DatapathEvent, DropEvent, EndpointSpec } from '../../datapath/types.js';
import { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import { newLogger } from '../../controllers/runtime/log.js';

const BPFFS_ROOT = '/sys/fs/bpf';

/** A directory of its own on the host bpffs; removing it unpins everything pinned inside. */
export class BpffsScratch {
  private constructor(readonly dir: string) {}

  static create(prefix: string): BpffsScratch {
    ensureBpffs(BPFFS_ROOT);
    return new BpffsScratch(mkdtempSync(path.join(BPFFS_ROOT, `cilium-ts-${prefix}-`)));
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Removes directories an interrupted run with this prefix left on the bpffs. */
  static sweep(prefix: string): void {
    if (!isBpffs(BPFFS_ROOT)) return;
    for (const name of readdirSync(BPFFS_ROOT)) {
      if (name.startsWith(`cilium-ts-${prefix}-`)) rmSync(path.join(BPFFS_ROOT, name), { recursive: true, force: true });
    }
  }
}

export function endpointFor(pod: Pod, id: number, identity: number): EndpointSpec {
  return { id, identity, ipv4: pod.ip, ifname: pod.hostIfname, ifindex: pod.hostIfindex, mac: pod.podMac, nodeMac: pod.hostMac };
}

export function isDrop(ev: DatapathEvent): ev is DropEvent {
  return ev.type === 'drop';
}

/** One echo request from `from` to `ip`: true when the reply came within two seconds. */
export async function ping(net: PodNetwork, from: string, ip: string): Promise<boolean> {
  try {
    await net.exec(from, 'ping', ['-c', '1', '-W', '2', ip]);
    return true;
  } catch (err) {
    // ping exits 1 when no reply came; anything else (2: bad address, missing binary) is an error.
    if (err instanceof CommandError && err.exitCode === 1) return false;
    throw err;
  }
}

/** The real datapath on a scratch pin directory; warnings only, so test output stays readable. */
export function openDatapath(bpffsDir: string): Promise<LinuxDatapath> {
  return LinuxDatapath.open({ bpffsDir, logger: newLogger('datapath-test', 'warn') });
}
