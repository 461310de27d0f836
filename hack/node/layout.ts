// Where one node of the local cluster keeps its files: everything under <state dir>/nodes/<node>,
// so `down` can find and remove all of it from the state dir and the node name alone (also after
// an `up` that died before it recorded anything). Tools and tests read node.json (contracts).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { repoRoot } from '../controlplane/paths.js';

export interface NodeLayout {
  name: string;
  dir: string;
  /** The agent's REST API socket, its state and the node.json that points at both. */
  agentSocket: string;
  agentStateDir: string;
  nodeJson: string;
  /** The node's namespaces record while they are made (journal.ts). */
  namespacesJournal: string;
  containerdDir: string;
  containerdConfig: string;
  /** The containerd component's record while it is built (journal.ts). */
  containerdJournal: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  runcRoot: string;
  optDir: string;
  cniConfDir: string;
  /** Shared by all nodes: `npm run build:cni` puts cilium-cni there. */
  cniBinDir: string;
  /** host-local IPAM's allocations for the bridge network (kept out of /var/lib/cni/networks). */
  cniIpamDir: string;
  kubeletDir: string;
  kubeletConfig: string;
  kubeletJournal: string;
  kubeletRootDir: string;
  kubeletCertDir: string;
  podLogsDir: string;
  volumePluginDir: string;
  /** Private copies bind-mounted over the paths kubelet hard-codes. */
  devicePluginsDir: string;
  containerLogsDir: string;
  /** cgroup (v1) parent of every pod of this node, in every hierarchy. */
  cgroupRoot: string;
}

/**
 * Names host-wide things (bpffs pin dirs, cgroups) after the state dir, so two local clusters
 * (a user's and a test's) never share them and one's `down` never touches the other's.
 */
export function stateDirTag(stateDir: string): string {
  return createHash('sha256').update(path.resolve(stateDir)).digest('hex').slice(0, 12);
}

export function nodeLayout(stateDir: string, name: string): NodeLayout {
  const dir = path.join(stateDir, 'nodes', name);
  const containerdDir = path.join(dir, 'containerd');
  const kubeletDir = path.join(dir, 'kubelet');
  return {
    name,
    dir,
    agentSocket: path.join(dir, 'cilium.sock'),
    agentStateDir: path.join(dir, 'state'),
    nodeJson: path.join(dir, 'node.json'),
    namespacesJournal: path.join(dir, 'namespaces.json'),
    containerdDir,
    containerdConfig: path.join(containerdDir, 'config.toml'),
    containerdJournal: path.join(containerdDir, 'record.json'),
    containerdRoot: path.join(containerdDir, 'root'),
    containerdState: path.join(containerdDir, 'state'),
    containerdSocket: path.join(containerdDir, 'containerd.sock'),
    runcRoot: path.join(containerdDir, 'runc'),
    optDir: path.join(containerdDir, 'opt'),
    cniConfDir: path.join(containerdDir, 'net.d'),
    cniBinDir: path.join(repoRoot, '.local', 'cni', 'bin'),
    cniIpamDir: path.join(containerdDir, 'ipam'),
    kubeletDir,
    kubeletConfig: path.join(kubeletDir, 'config.yaml'),
    kubeletJournal: path.join(kubeletDir, 'record.json'),
    kubeletRootDir: path.join(kubeletDir, 'root'),
    kubeletCertDir: path.join(kubeletDir, 'pki'),
    podLogsDir: path.join(kubeletDir, 'pod-logs'),
    volumePluginDir: path.join(kubeletDir, 'volume-plugins'),
    devicePluginsDir: path.join(kubeletDir, 'device-plugins'),
    containerLogsDir: path.join(kubeletDir, 'container-logs'),
    cgroupRoot: `/cilium-ts-${stateDirTag(stateDir)}-${name}`,
  };
}
