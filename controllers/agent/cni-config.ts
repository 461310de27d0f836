// The node's CNI configuration (upstream `write-cni-conf-when-ready`): written once the agent can
// serve CNI ADDs, so the container runtime never picks up cilium before its endpoints are
// restored and its IPAM is bound. Upstream's default "none"-chaining shape, at CNI spec 1.0.0
// (containerd 1.6's libcni accepts 0.1.0 … 1.0.0; cilium-cni also answers 0.3.1 and 0.4.0).
//
// The runtime watches the directory and loads every *.conf/*.conflist/*.json in it, so the file
// appears whole or not at all: written to a dot-named temp file (no such suffix) and renamed over
// the target. A file that already says the same is left alone (no reload, mtime kept); one that
// differs or does not parse is replaced.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { writeFileAtomic } from '../runtime/atomic-file.js';
import { DEFAULT_DELETE_QUEUE_DIR, DEFAULT_LOG_FILE, DEFAULT_SOCKET_PATH } from '../cni/netconf.js';

export const CNI_CONF_VERSION = '1.0.0';

export interface CiliumConflistOptions {
  /** The plugin's log file (upstream cni-log-file). */
  logFile?: string;
  /** The plugin logs at debug level (upstream debug). */
  debug?: boolean;
  /**
   * The agent's API socket (socket-path), when not upstream's /var/run/cilium/cilium.sock: the
   * runtime starts the plugin with its own environment, so the conflist is the only way to say.
   */
  socketPath?: string;
  /** Where the plugin queues DELs while the agent is down (<state-dir>/deleteQueue), when not upstream's. */
  deleteQueueDir?: string;
}

/** A network configuration list (CNI spec): what the runtime reads from its conf dir. */
export interface Conflist {
  cniVersion: string;
  name: string;
  plugins: readonly ({ type: string } & Record<string, unknown>)[];
}

export interface CiliumConflist extends Conflist {
  name: 'cilium';
  plugins: [{ type: 'cilium-cni'; 'enable-debug': boolean; 'log-file': string; 'socket-path'?: string; 'delete-queue-dir'?: string }];
}

/** The conflist of an agent whose state lives in `stateDir` (upstream: /var/run/cilium). */
export function agentConflist(stateDir: string, socketPath: string): CiliumConflist {
  return ciliumConflist({ socketPath, logFile: path.join(stateDir, 'cilium-cni.log'), deleteQueueDir: path.join(stateDir, 'deleteQueue') });
}

// Fields equal to the plugin's defaults are left out, so a default agent writes upstream's file.
export function ciliumConflist(opts: CiliumConflistOptions = {}): CiliumConflist {
  const socket = opts.socketPath === undefined || opts.socketPath === DEFAULT_SOCKET_PATH ? {} : { 'socket-path': opts.socketPath };
  const queue = opts.deleteQueueDir === undefined || opts.deleteQueueDir === DEFAULT_DELETE_QUEUE_DIR ? {} : { 'delete-queue-dir': opts.deleteQueueDir };
  return {
    cniVersion: CNI_CONF_VERSION,
    name: 'cilium',
    plugins: [{ type: 'cilium-cni', 'enable-debug': opts.debug ?? false, 'log-file': opts.logFile ?? DEFAULT_LOG_FILE, ...socket, ...queue }],
  };
}

function parsedOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * Makes `file` hold `conflist`: 'unchanged' when it already did (as JSON; formatting aside),
 * otherwise writes it atomically and answers 'written'.
 */
export async function writeCniConfig(file: string, conflist: Conflist = ciliumConflist()): Promise<'written' | 'unchanged'> {
  let existing: string | undefined;
  try {
    existing = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`write-cni-conf-when-ready ${file}: reading the existing file: ${(err as Error).message}`, { cause: err });
  }
  if (existing !== undefined && isDeepStrictEqual(parsedOrUndefined(existing), conflist)) return 'unchanged';

  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFileAtomic(file, `${JSON.stringify(conflist, null, 2)}\n`, 0o644);
  } catch (err) {
    throw new Error(`write-cni-conf-when-ready ${file}: ${(err as Error).message}`, { cause: err });
  }
  return 'written';
}
