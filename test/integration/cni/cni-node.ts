// One node for the CNI tests, in the test process: the shared envtest apiserver, an operator (it
// hands out the podCIDR), an AgentDaemon serving its REST API on a socket in a temp dir, the
// plugin bundled as it ships (hack/build-cni.ts) with a conflist pointing at that socket, and the
// real cnitool running it. Pods are Pod objects bound to the node (the agent takes identity labels
// from them) plus named network namespaces. destroy() removes everything, also after a failure.
import { randomBytes, randomInt, createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { AgentClient } from '../../../controllers/agent/api/client.js';
import { AgentDaemon } from '../../../controllers/agent/daemon.js';
import { loadAgentConfig } from '../../../controllers/config/agent.js';
import { loadOperatorConfig } from '../../../controllers/config/operator.js';
import { buildOperator, type Operator } from '../../../controllers/operator/operator.js';
import { isNotFound, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { ciliumIdentities, ciliumNodes, collectionPath, objectPath, pods as podType } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { BpfMap } from '../../../datapath/libbpf/map.js';
import { makeBpffsDir, removeDir } from '../../../datapath/libbpf/testdata/fixtures.js';
import { decodeEndpointKey } from '../../../datapath/maps/lxc.js';
import { createNetns, deleteNetns, listNetns } from '../../../datapath/netns/netns.js';
import { BPFFS_ROOT } from '../../../datapath/linux/paths.js';
import { buildCniPlugin } from '../../../hack/build-cni.js';
import { defaultBinDir } from '../../../hack/controlplane/paths.js';
import { runCleanup } from '../../datapath/cleanup-steps.js';
import { OPERATOR_ARGS } from '../../e2e/harness.js';
import { runWithExitCode, type CommandResult } from '../../envtest/command.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';

const LOG_LEVEL = process.env.CILIUM_TS_LOG_LEVEL ?? 'error';
const PIN_PREFIX = 'cilium-ts-cni-';
const NETNS_PREFIX = 'cnit';
export const NETWORK = 'cilium';
/** libcni's result cache (cnitool's default): CHECK reads it, DEL removes it. */
const CNI_CACHE_DIR = '/var/lib/cni/results';

export interface CniCall extends CommandResult {
  ms: number;
}

export class CniNode {
  readonly node = `cni-test-${randomBytes(3).toString('hex')}`;
  readonly netnsPrefix = `${NETNS_PREFIX}${randomBytes(2).toString('hex')}`;
  client!: ApiClient;
  namespace = '';
  tmp = '';
  pinDir = '';
  agentDaemon?: AgentDaemon;
  private agentDone?: Promise<void>;
  private operator?: { operator: Operator; done: Promise<void> };
  private nsCleanup?: () => Promise<void>;
  private readonly netns = new Set<string>();
  /** libcni result cache files cnitool may have written. */
  private readonly cacheFiles = new Set<string>();
  private readonly podUids = new Map<string, string>();
  private kubeconfigPath = '';

  get socketPath(): string {
    return path.join(this.tmp, 'cilium.sock');
  }
  get confDir(): string {
    return path.join(this.tmp, 'net.d');
  }
  get binDir(): string {
    return path.join(this.tmp, 'bin');
  }
  get logFile(): string {
    return path.join(this.tmp, 'cilium-cni.log');
  }
  get queueDir(): string {
    return path.join(this.tmp, 'state', 'deleteQueue');
  }
  get api(): AgentClient {
    return new AgentClient({ socketPath: this.socketPath, timeoutMs: 30_000 });
  }
  get daemon(): AgentDaemon {
    if (this.agentDaemon === undefined) throw new Error(`node ${this.node}: agent not running`);
    return this.agentDaemon;
  }

  async start(): Promise<void> {
    await sweep();
    const cp = await sharedControlPlane();
    this.kubeconfigPath = cp.kubeconfigPath;
    this.client = newApiClient(cp.kubeConfig);
    const ns = await testNamespace(cp);
    this.namespace = ns.name;
    this.nsCleanup = () => ns.cleanup();
    this.tmp = await mkdtemp(path.join(tmpdir(), PIN_PREFIX));
    this.pinDir = makeBpffsDir(PIN_PREFIX);
    await buildCniPlugin(path.join(this.binDir, 'cilium-cni'));
    await this.writeConf();
    // The e2e harness's operator, with a cluster CIDR away from its 10.250-254/16.
    const config = loadOperatorConfig([...OPERATOR_ARGS, `--cluster-pool-ipv4-cidr=10.${randomInt(236, 246)}.0.0/16`], {});
    const operator = buildOperator({
      config,
      client: this.client,
      logger: newLogger('cni-test-operator', LOG_LEVEL),
      identity: `cni-op-${randomBytes(3).toString('hex')}`,
      leaseNamespace: this.namespace,
      namespace: this.namespace,
      nodeGC: false,
    });
    this.operator = { operator, done: operator.manager.start() };
    await this.startAgent();
  }

  /** The conflist as the agent writes it, plus the socket and delete queue of this test's agent. */
  async writeConf(pluginFields: Record<string, unknown> = {}, name = NETWORK, cniVersion = '1.0.0'): Promise<void> {
    await mkdir(this.confDir, { recursive: true });
    const conf = {
      cniVersion,
      name,
      plugins: [{ type: 'cilium-cni', 'enable-debug': false, 'log-file': this.logFile, 'socket-path': this.socketPath, 'delete-queue-dir': this.queueDir, ...pluginFields }],
    };
    await writeFile(path.join(this.confDir, `05-${name}.conflist`), JSON.stringify(conf));
  }

  async startAgent(): Promise<AgentDaemon> {
    if (this.agentDaemon !== undefined) throw new Error(`node ${this.node}: agent already running`);
    const config = loadAgentConfig(
      [
        `--node-name=${this.node}`,
        `--bpf-pin-dir=${this.pinDir}`,
        `--state-dir=${path.join(this.tmp, 'state')}`,
        '--agent-health-port=0',
        '--prometheus-serve-addr=',
        `--k8s-kubeconfig-path=${this.kubeconfigPath}`,
        `--socket-path=${this.socketPath}`,
      ],
      {},
    );
    const daemon = await AgentDaemon.open({ config, logger: newLogger(`cni-test-agent/${this.node}`, LOG_LEVEL), nodeIP: '192.0.2.31' });
    this.agentDaemon = daemon;
    this.agentDone = daemon.start();
    this.agentDone.catch((err: Error) => newLogger('cni-test', 'error').error('agent stopped with an error', { error: err.message }));
    await daemon.node.waitForPodCIDR();
    await pollUntil('the agent to restore its endpoints', () => daemon.restoreReport !== undefined, 20_000);
    return daemon;
  }

  async stopAgent(): Promise<void> {
    const daemon = this.agentDaemon;
    if (daemon === undefined) return;
    this.agentDaemon = undefined;
    daemon.stop();
    await this.agentDone?.catch(() => undefined);
  }

  async podCIDR(): Promise<string> {
    return (await this.daemon.node.waitForPodCIDR()).podCIDR;
  }

  /** A Pod object bound to this node, and a named netns for it; returns the netns path. */
  async addPod(name: string, labels: Record<string, string> = { app: name }): Promise<string> {
    const body: V1Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: this.namespace, labels },
      spec: { nodeName: this.node, containers: [{ name: 'c', image: 'localhost/cilium-ts/testbox:v1' }] },
    };
    if (!this.podUids.has(name)) {
      const created = await this.client.request<V1Pod>('POST', collectionPath(podType, this.namespace), { body });
      this.podUids.set(name, created.metadata?.uid ?? '');
    }
    const netns = `${this.netnsPrefix}-${name}`;
    if (!this.netns.has(netns)) {
      await createNetns(netns);
      this.netns.add(netns);
    }
    return `/run/netns/${netns}`;
  }

  /** cnitool's container id for a netns path (cnitool derives it from the path). */
  static containerIdOf(netnsPath: string): string {
    return `cnitool-${createHash('sha512').update(netnsPath).digest('hex').slice(0, 20)}`;
  }

  async cnitool(cmd: 'add' | 'check' | 'del', netnsPath: string, pod: string, opts: { network?: string; args?: string } = {}): Promise<CniCall> {
    this.cacheFiles.add(path.join(CNI_CACHE_DIR, `${opts.network ?? NETWORK}-${CniNode.containerIdOf(netnsPath)}-eth0`));
    const started = performance.now();
    const r = await runWithExitCode(path.join(defaultBinDir(), 'cnitool'), [cmd, opts.network ?? NETWORK, netnsPath], {
      env: {
        PATH: process.env.PATH,
        NETCONFPATH: this.confDir,
        CNI_PATH: this.binDir,
        CNI_IFNAME: 'eth0',
        CNI_ARGS: opts.args ?? `IgnoreUnknown=1;K8S_POD_NAMESPACE=${this.namespace};K8S_POD_NAME=${pod};K8S_POD_UID=${this.podUids.get(pod) ?? ''}`,
      },
    });
    return { ...r, ms: performance.now() - started };
  }

  /** Addresses the agent's IPAM holds for this test's pods. */
  allocatedIPs(): string[] {
    return Object.entries(this.daemon.node.used())
      .filter(([, a]) => a.owner.startsWith(`${this.namespace}/`))
      .map(([ip]) => ip);
  }

  /** IPv4 keys of the node's cilium_lxc map (pod endpoints and host entries). */
  lxcKeys(): string[] {
    const map = BpfMap.openPinned(path.join(this.pinDir, 'cilium_lxc'));
    try {
      return [...map.keys()].map(decodeEndpointKey).filter((k): k is string => k !== undefined);
    } finally {
      map.close();
    }
  }

  async destroy(): Promise<void> {
    const identities = await this.client
      ?.request<{ items: { metadata: { name?: string }; 'security-labels'?: Record<string, string> }[] }>('GET', collectionPath(ciliumIdentities))
      .then((l) => l.items.filter((ci) => ci['security-labels']?.['k8s:io.kubernetes.pod.namespace'] === this.namespace))
      .catch(() => []);
    await runCleanup('cni test node', [
      ['stop agent', () => this.stopAgent()],
      ['stop operator', async () => (this.operator?.operator.manager.stop(), await this.operator?.done.catch(() => undefined))],
      ...[...this.netns].map((n) => [`delete netns ${n}`, () => deleteNetns(n)] as const),
      ['remove libcni cache', () => Promise.all([...this.cacheFiles].map((f) => rm(f, { force: true })))],
      ['remove pins', () => removeDir(this.pinDir || undefined)],
      ['remove temp dir', () => (this.tmp ? rm(this.tmp, { recursive: true, force: true }) : undefined)],
      ['delete namespace', () => this.nsCleanup?.()],
      [
        'delete CiliumNode',
        () =>
          this.client?.request('DELETE', objectPath(ciliumNodes, this.node)).catch((e: unknown) => {
            if (!isNotFound(e)) throw e;
          }),
      ],
      ['delete CiliumIdentities', () => Promise.all((identities ?? []).map((ci) => this.client.request('DELETE', objectPath(ciliumIdentities, ci.metadata.name ?? '')).catch(() => undefined)))],
    ]);
  }
}

/** What a killed earlier run left: its namespaces (their veths go with them), pins and temp dirs. */
async function sweep(): Promise<void> {
  for (const n of await listNetns()) if (new RegExp(`^${NETNS_PREFIX}[0-9a-f]{4}-`).test(n)) await deleteNetns(n);
  for (const d of readdirSync(BPFFS_ROOT)) if (d.startsWith(PIN_PREFIX)) removeDir(path.join(BPFFS_ROOT, d));
  for (const d of readdirSync(tmpdir())) if (d.startsWith(PIN_PREFIX)) await rm(path.join(tmpdir(), d), { recursive: true, force: true });
}
