// The suite's workloads, after upstream's `cilium connectivity test` (cilium-cli/connectivity):
// in the test namespace `client` and `client2` (other labels) on the first node, `client3` (client2's
// labels) on the second, `echo-same-node` beside the clients and `echo-other-node` on the second
// node; in a second namespace another `echo-same-node` / `echo-other-node` pair. Each is a
// Deployment pinned to its node by node affinity and serves HTTP on the named ports http-8080
// and http-9090 (the second port is what port policies leave out).
import type { CiliumEndpoint } from '../../crds/gen/index.js';
import { kubectlJson, kubectlOk, nodeTestNamespace, TESTBOX_IMAGE, waitFor, type PodView } from '../node/cluster.js';
import type { ClusterNode, ConnectivityCluster } from './cluster.js';

export const HTTP_PORT = 8080;
export const OTHER_HTTP_PORT = 9090;
export const HTTP_PORT_NAME = 'http-8080';

// httpd as PID 1 ignores SIGTERM; under sh with a trap a pod goes at once.
const SERVE_BOTH_PORTS = `httpd -f -p ${HTTP_PORT} -h /var/www & a=$!; httpd -f -p ${OTHER_HTTP_PORT} -h /var/www & b=$!; trap "kill $a $b; exit 0" TERM INT; wait`;

/** A pod of the suite, with what the datapath knows it by. */
export interface Peer {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  pod: string;
  ip: string;
  node: string;
  identity: number;
  endpointId: number;
}

interface WorkloadSpec {
  name: string;
  labels: Record<string, string>;
  /** Index into the cluster's nodes. */
  node: 0 | 1;
}

const TEST_NS_WORKLOADS: WorkloadSpec[] = [
  { name: 'client', labels: { kind: 'client', name: 'client' }, node: 0 },
  { name: 'client2', labels: { kind: 'client', name: 'client2', other: 'client' }, node: 0 },
  { name: 'client3', labels: { kind: 'client', name: 'client3', other: 'client' }, node: 1 },
  { name: 'echo-same-node', labels: { kind: 'echo', name: 'echo-same-node' }, node: 0 },
  { name: 'echo-other-node', labels: { kind: 'echo', name: 'echo-other-node' }, node: 1 },
];
const OTHER_NS_WORKLOADS: WorkloadSpec[] = [
  { name: 'echo-same-node', labels: { kind: 'echo', name: 'echo-same-node' }, node: 0 },
  { name: 'echo-other-node', labels: { kind: 'echo', name: 'echo-other-node' }, node: 1 },
];

function deployment(namespace: string, w: WorkloadSpec, node: ClusterNode): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: w.name, namespace, labels: w.labels },
    spec: {
      replicas: 1,
      selector: { matchLabels: { name: w.name } },
      template: {
        metadata: { labels: w.labels },
        spec: {
          terminationGracePeriodSeconds: 1,
          affinity: {
            nodeAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: {
                nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node.name] }] }],
              },
            },
          },
          containers: [
            {
              name: 'testbox',
              image: TESTBOX_IMAGE,
              command: ['sh', '-c', SERVE_BOTH_PORTS],
              ports: [
                { name: HTTP_PORT_NAME, containerPort: HTTP_PORT, protocol: 'TCP' },
                { name: 'http-9090', containerPort: OTHER_HTTP_PORT, protocol: 'TCP' },
              ],
            },
          ],
        },
      },
    },
  };
}

export interface Workloads {
  /** The test namespace (upstream's cilium-test) and the second one. */
  namespace: string;
  otherNamespace: string;
  peers: Peer[];
  cleanup(): Promise<void>;
}

const ROLLOUT_TIMEOUT_MS = 180_000;

/** Deploys every workload whose node exists (the second node's only on a multi-node cluster) and waits for their endpoints. */
export async function deployWorkloads(cluster: ConnectivityCluster): Promise<Workloads> {
  const ns = await nodeTestNamespace(cluster, 'cts-conn');
  const other = await nodeTestNamespace(cluster, 'cts-conn-other');
  const cleanup = async () => {
    await Promise.all([ns.cleanup(), other.cleanup()]);
  };
  try {
    const wanted = [
      ...TEST_NS_WORKLOADS.map((w) => ({ namespace: ns.name, w })),
      ...OTHER_NS_WORKLOADS.map((w) => ({ namespace: other.name, w })),
    ].filter(({ w }) => w.node < cluster.nodes.length);
    const manifests = wanted.map(({ namespace, w }) => deployment(namespace, w, cluster.nodes[w.node] as ClusterNode));
    await kubectlOk(cluster, ['apply', '-f', '-'], { stdin: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: manifests }) });
    for (const { namespace, w } of wanted) {
      await kubectlOk(cluster, ['rollout', 'status', '-n', namespace, `deployment/${w.name}`, `--timeout=${ROLLOUT_TIMEOUT_MS / 1000}s`]);
    }
    const peers: Peer[] = [];
    for (const { namespace, w } of wanted) peers.push(await peerOf(cluster, namespace, w));
    return { namespace: ns.name, otherNamespace: other.name, peers, cleanup };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}

async function peerOf(cluster: ConnectivityCluster, namespace: string, w: WorkloadSpec): Promise<Peer> {
  const pods = (await kubectlJson<{ items: PodView[] }>(cluster, ['get', 'pods', '-n', namespace, '-l', `name=${w.name}`])).items.filter((p) => p.status.phase === 'Running');
  if (pods.length !== 1) throw new Error(`${namespace}/${w.name}: expected one Running pod, found ${pods.length}`);
  const pod = pods[0] as PodView;
  const node = (cluster.nodes[w.node] as ClusterNode).name;
  if (pod.spec.nodeName !== node) throw new Error(`${namespace}/${pod.metadata.name} runs on ${pod.spec.nodeName}, its affinity says ${node}`);
  const cep = await waitFor(
    `the CiliumEndpoint of ${namespace}/${pod.metadata.name} with identity, endpoint id and address`,
    async () => {
      const c = await kubectlJson<CiliumEndpoint>(cluster, ['get', 'cep', '-n', namespace, pod.metadata.name]);
      const s = c.status;
      return s?.identity?.id !== undefined && s.id !== undefined && s.networking?.addressing?.[0]?.ipv4 === pod.status.podIP ? c : undefined;
    },
    60_000,
    500,
  );
  const s = cep.status as NonNullable<CiliumEndpoint['status']>;
  return {
    name: w.name,
    namespace,
    labels: w.labels,
    pod: pod.metadata.name,
    ip: pod.status.podIP as string,
    node,
    identity: s.identity?.id as number,
    endpointId: s.id as number,
  };
}
