// The bench's veth pairs, made and removed in one `ip -batch` each: a thousand `ip link add`
// processes would take longer than the agent work being measured.
import { listLinks } from '../../datapath/netns/link.js';
import { runCommand } from '../../datapath/netns/run.js';
import type { TestLink } from '../../datapath/linux/testing/fixtures.js';

/** Host-side names are `<prefix><i>`, peers `<prefix><i>p`; both must fit IFNAMSIZ (15). */
export function vethName(prefix: string, i: number): string {
  const name = `${prefix}${i}`;
  if (name.length + 1 > 15) throw new Error(`veth name ${name}p: longer than 15 characters`);
  return name;
}

async function ipBatch(context: string, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  // -force: one failing line (e.g. a link already gone) does not stop the others.
  await runCommand(context, 'ip', ['-force', '-batch', '-'], { input: `${lines.join('\n')}\n`, timeoutMs: 300_000 });
}

/** Creates `count` veth pairs and returns their host sides with ifindex and MAC. */
export async function createVeths(prefix: string, count: number): Promise<TestLink[]> {
  const names = Array.from({ length: count }, (_, i) => vethName(prefix, i));
  await ipBatch(`create ${count} veth pairs`, names.map((n) => `link add name ${n} type veth peer name ${n}p`));
  const byName = new Map((await listLinks()).map((l) => [l.ifname, l]));
  return names.map((n) => {
    const info = byName.get(n);
    if (info === undefined) throw new Error(`veth ${n}: missing after ip -batch`);
    return { ifname: n, ifindex: info.ifindex, mac: info.mac };
  });
}

/** Removes every host-side veth named `<prefix><digits>` (its peer goes with it); returns how many. */
export async function removeVeths(prefix: string): Promise<number> {
  const pattern = new RegExp(`^${prefix}\\d+$`);
  const names = (await listLinks()).map((l) => l.ifname).filter((n) => pattern.test(n));
  await ipBatch(`delete ${names.length} veth pairs`, names.map((n) => `link del ${n}`));
  return names.length;
}
