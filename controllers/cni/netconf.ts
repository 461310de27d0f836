// The network configuration the runtime passes on stdin: the conflist's cniVersion and name with
// this plugin's entry (upstream's cilium-cni fields, plus where this node's agent and delete queue
// live). Every refusal names the field, so `kubectl describe pod` says what to fix.
import { isAbsolute } from 'node:path';
import { DEFAULT_SOCKET_PATH } from '../agent/api/client.js';
import { CNI_ERR, CniError } from './errors.js';
import { SUPPORTED_VERSIONS, isSupportedVersion, type CniVersion } from './versions.js';

export { DEFAULT_SOCKET_PATH };
export const DEFAULT_LOG_FILE = '/var/run/cilium/cilium-cni.log';
export const DEFAULT_DELETE_QUEUE_DIR = '/var/run/cilium/deleteQueue';

export interface NetConf {
  cniVersion: CniVersion;
  name: string;
  type: string;
  /** 0: the agent's device MTU. */
  mtu: number;
  enableDebug: boolean;
  /** '' writes no log file. */
  logFile: string;
  socketPath: string;
  deleteQueueDir: string;
  /** The previous plugin's result (CHECK, DEL, chained ADD), as given. */
  prevResult?: unknown;
}

// libcni's network name check.
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function invalid(field: string, reason: string): CniError {
  return new CniError(CNI_ERR.invalidNetworkConfig, 'invalid network configuration', `field "${field}": ${reason}`);
}

function optionalString(obj: Record<string, unknown>, field: string, fallback: string): string {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string') throw invalid(field, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

function optionalPath(obj: Record<string, unknown>, field: string, fallback: string, allowEmpty: boolean): string {
  const v = optionalString(obj, field, fallback);
  if (v === '' && allowEmpty) return v;
  if (!isAbsolute(v)) throw invalid(field, `must be an absolute path, got ${JSON.stringify(v)}`);
  return v;
}

/** The cniVersion the input asks for, if it can be read at all (for the error object's own cniVersion). */
export function peekCniVersion(stdin: string): string | undefined {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v !== '' ? v : undefined;
  } catch {
    return undefined;
  }
}

export function parseNetConf(stdin: string): NetConf {
  let raw: unknown;
  try {
    raw = JSON.parse(stdin);
  } catch (err) {
    throw new CniError(CNI_ERR.decodingFailure, 'decoding network configuration', `stdin is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new CniError(CNI_ERR.decodingFailure, 'decoding network configuration', 'stdin must be a JSON object');
  }
  const obj = raw as Record<string, unknown>;
  // libcni reads a missing cniVersion as 0.1.0, which this plugin does not speak.
  const version = obj.cniVersion ?? '0.1.0';
  if (typeof version !== 'string') throw new CniError(CNI_ERR.decodingFailure, 'decoding network configuration', `field "cniVersion": must be a string, got ${JSON.stringify(version)}`);
  if (!isSupportedVersion(version)) {
    throw new CniError(CNI_ERR.incompatibleVersion, 'incompatible CNI versions', `config is "${version}", plugin supports ${JSON.stringify(SUPPORTED_VERSIONS)}`);
  }
  const name = obj.name;
  if (typeof name !== 'string' || name === '') throw invalid('name', 'missing network name');
  if (!NETWORK_NAME.test(name)) throw invalid('name', `invalid characters in network name ${JSON.stringify(name)}`);
  const type = optionalString(obj, 'type', '');

  const mtu = obj.mtu ?? 0;
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 0 || (mtu > 0 && mtu < 68) || mtu > 65535) {
    throw invalid('mtu', `must be 0 (agent default) or an integer 68..65535, got ${JSON.stringify(mtu)}`);
  }
  const enableDebug = obj['enable-debug'] ?? false;
  if (typeof enableDebug !== 'boolean') throw invalid('enable-debug', `must be a boolean, got ${JSON.stringify(enableDebug)}`);
  const chaining = optionalString(obj, 'chaining-mode', '');
  if (chaining !== '' && chaining !== 'none') throw invalid('chaining-mode', `${JSON.stringify(chaining)} is not supported (only "none")`);

  return {
    cniVersion: version,
    name,
    type,
    mtu,
    enableDebug,
    logFile: optionalPath(obj, 'log-file', DEFAULT_LOG_FILE, true),
    socketPath: optionalPath(obj, 'socket-path', DEFAULT_SOCKET_PATH, false),
    deleteQueueDir: optionalPath(obj, 'delete-queue-dir', DEFAULT_DELETE_QUEUE_DIR, false),
    ...(obj.prevResult !== undefined && obj.prevResult !== null ? { prevResult: obj.prevResult } : {}),
  };
}
