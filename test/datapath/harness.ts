// What the namespace and restart tests and the benchmark share: the endpoint a pod becomes, ping,
// and the LinuxDatapath they drive (on a pin directory from datapath/linux/testing/fixtures.ts).
import type { Pod, PodNetwork } from '../../datapath/netns/pod-network.js';
import { CommandError } from '../../datapath/netns/run.js';
import type { DatapathEvent, DropEvent, EndpointSpec } from '../../datapath/types.js';
import { LinuxDatapath } from '../../datapath/linux/linux-datapath.js';
import { newLogger } from '../../controllers/runtime/log.js';

// Upstream drop reasons the tests expect: a source no endpoint on the veth owns, no entry allows
// the flow, a destination no endpoint on the veth owns, a deny entry matched.
export const DROP_INVALID_SIP = 132;
export const DROP_POLICY = 133;
export const DROP_UNROUTABLE = 151;
export const DROP_POLICY_DENY = 181;

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
