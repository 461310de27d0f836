// Per-interface sysctls of the current (root) namespace, written through /proc/sys.
import { readFile, writeFile } from 'node:fs/promises';
import { assertIfName } from './validate.js';

export type Ipv4ConfKey = 'forwarding' | 'proxy_arp';

function confPath(ifname: string, key: Ipv4ConfKey): string {
  return `/proc/sys/net/ipv4/conf/${assertIfName(ifname)}/${key}`;
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
