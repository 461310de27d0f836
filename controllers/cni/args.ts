// The CNI protocol parameters: CNI_* environment variables, and CNI_ARGS ("K=V;K=V") with the
// keys kubelet/containerd pass. Which variables a command requires follows the spec (DEL may come
// without a netns). Every refusal is code 4 naming the variable.
import { assertNetnsPath } from '../../datapath/netns/netns-ref.js';
import { assertIfName } from '../../datapath/netns/validate.js';
import { CNI_ERR, CniError } from './errors.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface PodArgs {
  K8S_POD_NAME?: string;
  K8S_POD_NAMESPACE?: string;
  K8S_POD_INFRA_CONTAINER_ID?: string;
  K8S_POD_UID?: string;
}

export interface CniArgs {
  command: CniCommand;
  containerId: string;
  /** '' when the runtime gave none (DEL only). */
  netns: string;
  ifname: string;
  path: string;
  pod: PodArgs;
}

const POD_KEYS = ['K8S_POD_NAME', 'K8S_POD_NAMESPACE', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID'] as const;
// libcni's container id check.
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

type Env = Record<string, string | undefined>;

function invalidEnv(msg: string, details: string): CniError {
  return new CniError(CNI_ERR.invalidEnvironment, msg, details);
}

export function parseCommand(env: Env): CniCommand {
  const cmd = env.CNI_COMMAND;
  if (cmd === undefined || cmd === '') throw invalidEnv('required env variables [CNI_COMMAND] missing', 'CNI_COMMAND is not set');
  if (!(COMMANDS as readonly string[]).includes(cmd)) throw invalidEnv(`unknown CNI_COMMAND: ${cmd}`, `CNI_COMMAND must be one of ${COMMANDS.join(', ')}`);
  return cmd as CniCommand;
}

const REQUIRED: Record<Exclude<CniCommand, 'VERSION'>, readonly string[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  STATUS: ['CNI_PATH'],
  GC: ['CNI_PATH'],
};

/** "K=V;K=V"; unknown keys are refused unless IgnoreUnknown is 1/true, as libcni's LoadArgs does. */
export function parseCniArgs(raw: string): PodArgs {
  const pairs: [string, string][] = [];
  for (const part of raw.split(';')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalidEnv('invalid CNI_ARGS', `pair ${JSON.stringify(part)} is not KEY=VALUE`);
    pairs.push([part.slice(0, eq), part.slice(eq + 1)]);
  }
  let ignoreUnknown = false;
  for (const [k, v] of pairs) {
    if (k !== 'IgnoreUnknown') continue;
    if (v === '1' || v.toLowerCase() === 'true') ignoreUnknown = true;
    else if (v === '0' || v.toLowerCase() === 'false') ignoreUnknown = false;
    else throw invalidEnv('invalid CNI_ARGS', `IgnoreUnknown=${JSON.stringify(v)}: must be 1, 0, true or false`);
  }
  const out: PodArgs = {};
  for (const [k, v] of pairs) {
    if (k === 'IgnoreUnknown') continue;
    if ((POD_KEYS as readonly string[]).includes(k)) out[k as (typeof POD_KEYS)[number]] = v;
    else if (!ignoreUnknown) throw invalidEnv('invalid CNI_ARGS', `unknown key ${JSON.stringify(k)} (set IgnoreUnknown=1 to skip unknown keys)`);
  }
  return out;
}

export function parseArgs(command: Exclude<CniCommand, 'VERSION'>, env: Env): CniArgs {
  const missing = REQUIRED[command].filter((name) => !env[name]);
  if (missing.length > 0) throw invalidEnv(`required env variables [${missing.join(' ')}] missing`, `${command} needs ${REQUIRED[command].join(', ')}`);
  const containerId = env.CNI_CONTAINERID ?? '';
  if (containerId !== '' && !CONTAINER_ID.test(containerId)) {
    throw invalidEnv('invalid characters in containerID', `CNI_CONTAINERID ${JSON.stringify(containerId)} must match ${CONTAINER_ID.source}`);
  }
  const ifname = env.CNI_IFNAME ?? '';
  const netns = env.CNI_NETNS ?? '';
  try {
    if (ifname !== '') assertIfName(ifname, 'CNI_IFNAME');
    if (netns !== '') assertNetnsPath(netns);
  } catch (err) {
    throw invalidEnv('invalid environment', (err as Error).message.replace('netns path', 'CNI_NETNS'));
  }
  return { command, containerId, netns, ifname, path: env.CNI_PATH ?? '', pod: parseCniArgs(env.CNI_ARGS ?? '') };
}
