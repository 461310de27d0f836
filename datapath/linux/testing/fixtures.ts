// Scratch resources for datapath tests: a pin directory on the host bpffs and veth links in the
// root namespace for the endpoint programs to attach to. Each comes with its removal.
import { makeBpffsDir } from '../../libbpf/testdata/fixtures.js';
import { getLink, deleteLink } from '../../netns/link.js';
import { runIp } from '../../netns/run.js';

export { removeDir as removePinDir } from '../../libbpf/testdata/fixtures.js';

export const TEST_PREFIX = 'cilium-ts-dp-';

/** A fresh directory on the host bpffs; remove it with removePinDir. */
export function makePinDir(): string {
  return makeBpffsDir(TEST_PREFIX);
}

export interface TestLink {
  ifname: string;
  ifindex: number;
  mac: string;
}

/** A veth pair in the root namespace, named "ctsdp<tag><pid>"; its peer has the suffix "p". */
export async function createTestLink(tag: string): Promise<TestLink> {
  const ifname = `ctsdp${tag}${process.pid % 100000}`.slice(0, 14);
  await runIp(`create test veth ${ifname}`, ['link', 'add', 'name', ifname, 'type', 'veth', 'peer', 'name', `${ifname}p`]);
  const info = await getLink(ifname);
  return { ifname, ifindex: info.ifindex, mac: info.mac };
}

export async function removeTestLink(link: TestLink | undefined): Promise<void> {
  if (link !== undefined) await deleteLink(link.ifname);
}
