// One real agent for the REST API tests: an AgentDaemon against the test apiserver with its own
// pin and state directories (so its socket is <state-dir>/cilium.sock), a podCIDR set as the
// operator would, a test namespace for pods and a veth for endpoints. Everything is removed by
// cleanup(), also after a failure.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AgentClient } from '../../../controllers/agent/api/client.js';
import { AgentDaemon } from '../../../controllers/agent/daemon.js';
import type { EndpointChangeRequest } from '../../../controllers/agent/endpoint/change-request.js';
import type { NodeAddressing } from '../../../controllers/agent/node/registration.js';
import { agentSocketPath, loadAgentConfig } from '../../../controllers/config/agent.js';
import { isNotFound, newApiClient, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { ciliumIdentities, ciliumNetworkPolicies, ciliumNodes, collectionPath, objectPath, pods } from '../../../controllers/runtime/kinds.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { apply } from '../../../controllers/runtime/ssa.js';
import type { CiliumNetworkPolicy } from '../../../crds/gen/index.js';
import { createTestLink, makePinDir, removePinDir, removeTestLink, type TestLink } from '../../../datapath/linux/testing/fixtures.js';
import { sharedControlPlane, testNamespace, type ControlPlane } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';

const log = newLogger('api-test-agent', process.env.API_TEST_LOG ?? 'error');

export class ApiTestAgent {
  readonly client: AgentClient;
  private stopped?: Promise<void>;

  private constructor(
    readonly cp: ControlPlane,
    readonly kube: ApiClient,
    readonly node: string,
    readonly namespace: string,
    private readonly nsCleanup: () => Promise<void>,
    readonly pinDir: string,
    readonly stateDir: string,
    readonly link: TestLink,
    readonly daemon: AgentDaemon,
    readonly done: Promise<void>,
    readonly addressing: NodeAddressing,
  ) {
    this.client = new AgentClient({ socketPath: this.socketPath });
  }

  get socketPath(): string {
    return agentSocketPath({ 'socket-path': undefined, 'state-dir': this.stateDir });
  }

  /** Starts the agent, gives its node `podCIDR` and waits until IPAM takes allocations. */
  static async start(tag: string, podCIDR: string): Promise<ApiTestAgent> {
    const cp = await sharedControlPlane();
    const kube = newApiClient(cp.kubeConfig);
    const node = `api-${tag}-${process.pid}`;
    const undo: (() => Promise<unknown>)[] = [];
    try {
      const ns = await testNamespace(cp);
      undo.push(() => ns.cleanup());
      const pinDir = makePinDir();
      // eslint-disable-next-line @typescript-eslint/require-await
      undo.push(async () => removePinDir(pinDir));
      const stateDir = await mkdtemp(path.join(tmpdir(), `cilium-ts-api-${tag}-`));
      undo.push(() => rm(stateDir, { recursive: true, force: true }));
      const link = await createTestLink(tag);
      undo.push(() => removeTestLink(link));
      const config = loadAgentConfig(
        ['--node-name', node, '--k8s-kubeconfig-path', cp.kubeconfigPath, '--bpf-pin-dir', pinDir, '--state-dir', stateDir, '--agent-health-port', '0', '--prometheus-serve-addr', ''],
        {},
      );
      const daemon = await AgentDaemon.open({ config, logger: log, nodeIP: '198.18.9.1' });
      const done = daemon.start();
      undo.push(async () => {
        daemon.stop();
        await done.catch(() => undefined);
      });
      undo.push(() => deleteIfPresent(kube, objectPath(ciliumNodes, node)));
      await pollUntil('the CiliumNode registered', () => daemon.node.resource.store.has(node), 20_000);
      await kube.request('PATCH', objectPath(ciliumNodes, node), { body: { spec: { ipam: { podCIDRs: [podCIDR] } } }, contentType: 'application/merge-patch+json' });
      const addressing = await daemon.node.waitForPodCIDR(AbortSignal.timeout(20_000));
      await pollUntil('IPAM ready', () => daemon.ipamReady, 20_000);
      return new ApiTestAgent(cp, kube, node, ns.name, () => ns.cleanup(), pinDir, stateDir, link, daemon, done, addressing);
    } catch (err) {
      for (const u of undo.reverse()) await u().catch(() => undefined);
      throw err;
    }
  }

  /** A Pod object bound to this node; resolves to its uid. */
  async createPod(name: string, labels: Record<string, string>): Promise<string> {
    const created = await this.kube.request<{ metadata: { uid: string } }>('POST', collectionPath(pods, this.namespace), {
      body: { metadata: { name, namespace: this.namespace, labels }, spec: { nodeName: this.node, containers: [{ name: 'c', image: 'localhost/cilium-ts/testbox:v1' }] } },
    });
    return created.metadata.uid;
  }

  /** Applies a CiliumNetworkPolicy in the test namespace and waits until endpoint `id` enforces `direction`. */
  async applyPolicy(name: string, spec: NonNullable<CiliumNetworkPolicy['spec']>, id: number, direction: 'ingress' | 'egress'): Promise<void> {
    await apply(this.kube, ciliumNetworkPolicies, { apiVersion: 'cilium.io/v2', kind: 'CiliumNetworkPolicy', metadata: { name, namespace: this.namespace }, spec }, { fieldManager: 'api-test' });
    await pollUntil(`${direction} enforced on endpoint ${id}`, () => this.daemon.datapath.endpointPolicy(id).realized?.enforcement[direction] === true, 20_000);
  }

  /** What a CNI ADD sends for pod `podName` on this agent's veth. */
  changeRequest(podName: string, containerId: string, addressing?: EndpointChangeRequest['addressing']): EndpointChangeRequest {
    return {
      state: 'waiting-for-identity',
      'container-id': containerId,
      'container-interface-name': 'eth0',
      'interface-name': this.link.ifname,
      'interface-index': this.link.ifindex,
      mac: '02:00:00:00:30:01',
      'host-mac': this.link.mac,
      'k8s-namespace': this.namespace,
      'k8s-pod-name': podName,
      'sync-build-endpoint': true,
      ...(addressing ? { addressing } : {}),
    };
  }

  /** Stops the agent (once) and resolves when it has. */
  stop(): Promise<void> {
    this.daemon.stop();
    this.stopped ??= this.done;
    return this.stopped;
  }

  async cleanup(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (s: () => Promise<unknown>) => s().catch((err: unknown) => errors.push(err));
    // A stopped agent's datapath is closed: its endpoints go with the pin dir and the veth.
    if (this.stopped === undefined) for (const ep of this.daemon.endpoints.list()) await step(() => this.daemon.endpoints.delete(ep.id));
    await step(() => this.stop());
    await step(async () => {
      const list = await this.kube.request<{ items: { metadata: { name: string } }[] }>(
        'GET',
        `${collectionPath(ciliumIdentities)}?labelSelector=${encodeURIComponent(`io.kubernetes.pod.namespace=${this.namespace}`)}`,
      );
      for (const ci of list.items) await deleteIfPresent(this.kube, objectPath(ciliumIdentities, ci.metadata.name));
    });
    await step(() => deleteIfPresent(this.kube, objectPath(ciliumNodes, this.node)));
    await step(() => this.nsCleanup());
    // eslint-disable-next-line @typescript-eslint/require-await
    await step(async () => removePinDir(this.pinDir));
    await step(() => removeTestLink(this.link));
    await step(() => rm(this.stateDir, { recursive: true, force: true }));
    if (errors.length > 0) throw new Error(`api test agent cleanup: ${errors.map(String).join('; ')}`);
  }
}

async function deleteIfPresent(kube: ApiClient, objPath: string): Promise<void> {
  try {
    await kube.request('DELETE', objPath);
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
