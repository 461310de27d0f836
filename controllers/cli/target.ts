// Which agent socket and which pin directory a CLI invocation talks to: `-H` (env CILIUM_SOCK) as
// upstream, `--node NAME` for a node of the local cluster (.local/nodes/<NAME>/), and, with
// neither, the production socket, or the local cluster's only node when that socket is missing.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_SOCKET_PATH, parseHostFlag } from '../agent/api/client.js';
import { DEFAULT_PIN_DIR } from '../../datapath/linux/paths.js';
import { repoRoot } from '../../hack/controlplane/paths.js';

export class CliUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliUsageError';
  }
}

export interface TargetFlags {
  host?: string;
  node?: string;
  bpfPinDir?: string;
}

export interface Target {
  socketPath: string;
  pinDir: string;
  /** The local-cluster node this resolved to, if any. */
  node?: string;
}

interface NodeFile {
  socket?: unknown;
  bpfPinDir?: unknown;
}

/** Where the local cluster keeps its nodes (hack/cluster.ts --state-dir, env CILIUM_TS_STATE_DIR). */
export function localNodesDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env.CILIUM_TS_STATE_DIR ?? path.join(repoRoot, '.local'), 'nodes');
}

function nodeTarget(nodesDir: string, name: string, flags: TargetFlags): Target {
  const dir = path.join(nodesDir, name);
  if (!existsSync(dir)) {
    const known = existsSync(nodesDir) ? readdirSync(nodesDir) : [];
    throw new CliUsageError(`--node ${JSON.stringify(name)}: no such node in ${nodesDir} (known: ${known.length > 0 ? known.join(', ') : 'none; is the local cluster up?'})`);
  }
  let file: NodeFile = {};
  const nodeJson = path.join(dir, 'node.json');
  if (existsSync(nodeJson)) {
    try {
      file = JSON.parse(readFileSync(nodeJson, 'utf8')) as NodeFile;
    } catch (err) {
      throw new CliUsageError(`--node ${name}: ${nodeJson} is not JSON: ${(err as Error).message}`);
    }
  }
  const socketPath = flags.host !== undefined ? parseHost(flags.host) : typeof file.socket === 'string' ? file.socket : path.join(dir, 'cilium.sock');
  const pinDir = flags.bpfPinDir ?? (typeof file.bpfPinDir === 'string' ? file.bpfPinDir : DEFAULT_PIN_DIR);
  return { socketPath, pinDir, node: name };
}

function parseHost(value: string): string {
  try {
    return parseHostFlag(value);
  } catch (err) {
    throw new CliUsageError((err as Error).message);
  }
}

export function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv = process.env): Target {
  const nodesDir = localNodesDir(env);
  if (flags.node !== undefined) return nodeTarget(nodesDir, flags.node, flags);
  const host = flags.host ?? env.CILIUM_SOCK;
  if (host !== undefined) return { socketPath: parseHost(host), pinDir: flags.bpfPinDir ?? DEFAULT_PIN_DIR };
  if (!existsSync(DEFAULT_SOCKET_PATH) && existsSync(nodesDir)) {
    const nodes = readdirSync(nodesDir);
    if (nodes.length === 1) return nodeTarget(nodesDir, nodes[0]!, flags);
  }
  return { socketPath: DEFAULT_SOCKET_PATH, pinDir: flags.bpfPinDir ?? DEFAULT_PIN_DIR };
}
