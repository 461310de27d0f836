// Sysctls of the current process's network namespace (what /proc/sys/net shows it), written
// through /proc/sys. node:fs's callbacks, promisified: the CNI plugin uses this module, and
// loading node:fs/promises costs its process ~2 ms.
import { readFile as readFileCb, writeFile as writeFileCb } from 'node:fs';
import { promisify } from 'node:util';
import { assertIfName } from './validate.js';

const readFile = promisify(readFileCb);
const writeFile = promisify(writeFileCb);

export type Ipv4ConfKey = 'forwarding' | 'proxy_arp' | 'rp_filter' | 'accept_local' | 'send_redirects';

function confPath(ifname: string, key: Ipv4ConfKey): string {
  // "all" and "default" are the conf directories besides the interfaces'.
  const dir = ifname === 'all' || ifname === 'default' ? ifname : assertIfName(ifname);
  return `/proc/sys/net/ipv4/conf/${dir}/${key}`;
}

/** net.ipv4.ip_forward: routing between interfaces at all. */
export async function setIpForward(on: boolean): Promise<void> {
  try {
    await writeFile('/proc/sys/net/ipv4/ip_forward', on ? '1\n' : '0\n');
  } catch (err) {
    throw new Error(`set net.ipv4.ip_forward=${on ? 1 : 0}: ${(err as Error).message}`, { cause: err });
  }
}

export async function setIpv4Conf(ifname: string, key: Ipv4ConfKey, value: number): Promise<void> {
  try {
    await writeFile(confPath(ifname, key), `${value}\n`);
  } catch (err) {
    throw new Error(`set net.ipv4.conf.${ifname}.${key}=${value}: ${(err as Error).message}`, { cause: err });
  }
}

export async function getIpv4Conf(ifname: string, key: Ipv4ConfKey): Promise<number> {
  try {
    return Number((await readFile(confPath(ifname, key), 'utf8')).trim());
  } catch (err) {
    throw new Error(`read net.ipv4.conf.${ifname}.${key}: ${(err as Error).message}`, { cause: err });
  }
}
