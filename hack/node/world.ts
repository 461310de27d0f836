// The underlay (bridge, host addresses, forwarding) and "world": the one peer outside the cluster
// (contracts9 §A), a netns on the bridge that answers ping and serves HTTP with busybox httpd, so
// policies on the world entity and CIDRs are tested against a real outside peer. The host
// sysctls every node's parts change (forwarding here, kubelet's) are saved before anything
// starts and written back after everything stopped, so nodes started in parallel cannot save
// each other's changes as the host's values.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startProcess, type ProcessRecord } from '../controlplane/process.js';
import { readJournal, writeJournal } from './journal.js';
import { KUBELET_SYSCTLS } from './kubelet.js';
import { restoreSysctls, saveSysctls, type SysctlValues } from './sysctl.js';
import { WORLD, createAttachedNetns, createBridge, netnsPath, removeUnderlay, underlayLeftovers } from './underlay.js';

export const WORLD_BODY = 'hello from world\n';
const FORWARDING = 'net.ipv4.ip_forward';

export interface UnderlayRecord {
  sysctls: SysctlValues;
  httpd?: ProcessRecord;
}

/** dir: where the record (journal) and the web root live; removed by the caller after stopUnderlay. */
export async function startUnderlay(dir: string, logPath: string): Promise<UnderlayRecord> {
  const leftovers = underlayLeftovers();
  if (leftovers.length > 0) {
    throw new Error(`another local cluster (or what a killed one left) holds ${leftovers.join(', ')}: only one cluster per machine; run \`npm run cluster -- down\` in the checkout that started it`);
  }
  const journal = path.join(dir, 'underlay.json');
  const record: UnderlayRecord = { sysctls: await saveSysctls([FORWARDING, ...KUBELET_SYSCTLS]) };
  await writeJournal(journal, record);
  await createBridge();
  await writeFile(`/proc/sys/${FORWARDING.replaceAll('.', '/')}`, '1');
  await createAttachedNetns(WORLD.netns, `${WORLD.ip}/${WORLD.prefixLength}`, WORLD.hostIP);
  const www = path.join(dir, 'www');
  await mkdir(www, { recursive: true });
  await writeFile(path.join(www, 'index.html'), WORLD_BODY);
  record.httpd = await startProcess({
    name: 'world-httpd',
    binary: 'nsenter',
    args: [`--net=${netnsPath(WORLD.netns)}`, 'busybox', 'httpd', '-f', '-p', String(WORLD.httpPort), '-h', www],
    logPath,
    detached: true,
  });
  await writeJournal(journal, record);
  return record;
}

/** Removes every netns and link of the underlay (with what runs there) and restores the sysctls. */
export async function stopUnderlay(dir: string, record: UnderlayRecord | undefined): Promise<void> {
  record ??= await readJournal<UnderlayRecord>(path.join(dir, 'underlay.json'));
  await removeUnderlay();
  if (record !== undefined) await restoreSysctls(record.sysctls);
}
