// /healthz, /config, /cluster/nodes, /map, /debuginfo, and upstream's calls for features this
// agent does not have, answered as an upstream agent with that feature disabled answers them.
import { availableParallelism, release } from 'node:os';
import type { CiliumNode } from '../../../crds/gen/index.js';
import { globalIdentityRange } from '../identity/numeric.js';
import { HostScopePool } from '../ipam/pool.js';
import { addressingNow, type AgentApiDeps } from './deps.js';
import { lookupEndpoint } from './endpoint-id.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { isMapName, listPinnedMaps, readPinnedMap } from './maps.js';
import { ENDPOINT_OPTIONS, type NodeAddressingModel } from './models.js';
import { endpointModels, hostAddressing } from './routes-endpoint.js';
import { policyText } from './routes-policy.js';
import type { Router } from './router.js';
import { statusResponse } from './status.js';

export interface DaemonRouteDeps {
  deps: AgentApiDeps;
  version: string;
  /** The CNI configuration file the agent writes when ready, if it writes one. */
  cniConfFile?: string;
}

export function nodeElement(cluster: string, node: CiliumNode): Record<string, unknown> {
  const addr = (type: string) => node.spec.addresses?.find((a) => a.type === type)?.ip;
  const internal = addr('InternalIP');
  const ciliumInternal = addr('CiliumInternalIP');
  return {
    name: `${cluster}/${node.metadata.name ?? ''}`,
    'primary-address': { ipv4: { enabled: true, ...(internal ? { ip: internal } : {}) }, ipv6: { enabled: false } },
    'secondary-addresses': ciliumInternal ? [{ enabled: true, ip: ciliumInternal, 'address-type': 'CiliumInternalIP' }] : [],
    ...(node.spec.health?.ipv4 ? { 'health-endpoint-address': { ipv4: { enabled: true, ip: node.spec.health.ipv4 }, ipv6: { enabled: false } } } : {}),
  };
}

/** How long /healthz waits for the apiserver's /version. */
const K8S_PROBE_TIMEOUT_MS = 2_000;

/** Upstream's Kubernetes status line from the apiserver's /version: `1.36 (v1.36.3) [linux/amd64]`. */
export async function probeKubernetes(kube: AgentApiDeps['kube']): Promise<{ ok: boolean; msg: string }> {
  try {
    const v = await kube.request<{ major?: string; minor?: string; gitVersion?: string; platform?: string }>('GET', '/version', { signal: AbortSignal.timeout(K8S_PROBE_TIMEOUT_MS) });
    return { ok: true, msg: `${v.major ?? '?'}.${(v.minor ?? '?').replace(/\+$/, '')} (${v.gitVersion ?? '?'}) [${v.platform ?? '?'}]` };
  } catch (err) {
    return { ok: false, msg: `apiserver unreachable: ${(err as Error).message}` };
  }
}

async function healthz(r: DaemonRouteDeps, brief: boolean): Promise<Record<string, unknown>> {
  const { deps } = r;
  const health = deps.health();
  const addressing = await addressingNow(deps.node);
  const cluster = deps.config['cluster-name'];
  const ipam = addressing && { podCIDR: addressing.podCIDR, capacity: new HostScopePool(addressing.podCIDR).capacity, used: deps.node.used() };
  return statusResponse({
    version: r.version,
    ...(brief ? {} : { kubernetes: await probeKubernetes(deps.kube) }),
    resources: health.resources,
    unsynced: health.unsynced,
    stopping: !health.ok && health.unsynced.length === 0,
    ...(ipam ? { ipam } : {}),
    identityRange: globalIdentityRange(deps.config['cluster-id']),
    ...(r.cniConfFile ? { cniConfFile: r.cniConfFile } : {}),
    cpus: availableParallelism(),
    nodes: deps.ciliumNodes.store
      .list()
      .map((n) => `${cluster}/${n.metadata.name ?? ''}`)
      .sort(),
    self: `${cluster}/${deps.config['node-name']}`,
    brief,
    hubble: deps.hubble?.(),
  });
}

/** An option's value as ConfigurationMap text (lists comma-joined, as on the command line). */
function optionText(v: string | number | boolean | readonly string[] | undefined): string {
  if (v === undefined) return '';
  return typeof v === 'object' ? v.join(',') : String(v);
}

export function daemonConfiguration(deps: AgentApiDeps, addressing: NodeAddressingModel): Record<string, unknown> {
  const config = deps.config as Record<string, unknown>;
  const masquerade = deps.config['enable-ipv4-masquerade'] === 'true';
  const spec = { options: { ...ENDPOINT_OPTIONS }, 'policy-enforcement': deps.config['enable-policy'] };
  return {
    spec,
    status: {
      realized: spec,
      immutable: Object.fromEntries(Object.entries(deps.config).map(([k, v]) => [k, optionText(v)])),
      addressing,
      datapathMode: 'veth',
      'ipam-mode': 'cluster-pool',
      ...deps.mtu(),
      masquerade,
      masqueradeProtocols: { ipv4: masquerade, ipv6: false },
      enableRouteMTUForCNIChaining: false,
      'egress-multi-home-ip-rule-compat': false,
      installUplinkRoutesForDelegatedIPAM: false,
      'k8s-configuration': deps.config['k8s-kubeconfig-path'] ?? '',
      'k8s-endpoint': '',
      kvstoreConfiguration: {},
      daemonConfigurationMap: config,
    },
  };
}

export function daemonRoutes(router: Router, r: DaemonRouteDeps): void {
  const { deps } = r;
  const disabled = (what: string) => () => {
    throw new ApiError(501, `${what} is disabled in this agent`);
  };
  const empty = () => ({ status: 200, body: [] });

  router.add('GET', '/healthz', async (req) => ({ status: 200, body: await healthz(r, String(req.headers.brief ?? '').toLowerCase() === 'true') }));
  router.add('GET', '/config', async () => ({ status: 200, body: daemonConfiguration(deps, await hostAddressing(deps)) }));
  router.add('PATCH', '/config', disabled('changing the configuration at run time (restart the agent with other options)'));

  router.add('GET', '/cluster/nodes', () => {
    const cluster = deps.config['cluster-name'];
    const nodes = deps.ciliumNodes.store
      .list()
      .sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
      .map((n) => nodeElement(cluster, n));
    return { status: 200, body: { self: `${cluster}/${deps.config['node-name']}`, 'nodes-added': nodes, 'nodes-removed': [], 'client-id': 0 } };
  });

  router.add('GET', '/map', () => ({ status: 200, body: { maps: listPinnedMaps(deps.datapath.bpffsDir) } }));
  router.add('GET', '/map/{name}', (req) => {
    const name = req.params.name as string;
    if (!isMapName(name)) throw badRequest('map name', `${JSON.stringify(name)} is not a map name`);
    const map = readPinnedMap(deps.datapath.bpffsDir, name);
    if (map === undefined) throw notFound(`map ${name}`);
    return { status: 200, body: map };
  });
  // Upstream streams map changes from its map cache; this agent keeps none.
  router.add('GET', '/map/{name}/events', disabled('the BPF map event cache'));

  router.add('GET', '/debuginfo', async () => ({
    status: 200,
    body: {
      'cilium-version': r.version,
      'kernel-version': release(),
      'cilium-status': await healthz(r, false),
      'endpoint-list': await endpointModels(deps, deps.endpoints.list()),
      'service-list': [],
      policy: { revision: deps.repo.revision, policy: policyText(deps) },
      subsystem: {},
    },
  }));

  // Features this agent does not have: what an upstream agent with them disabled answers.
  router.add('GET', '/service', empty);
  router.add('GET', '/service/{id}', (req) => {
    throw notFound(`service ${req.params.id}`);
  });
  router.add('PUT', '/service/{id}', disabled('service load-balancing (kube-proxy replacement)'));
  router.add('DELETE', '/service/{id}', (req) => {
    throw notFound(`service ${req.params.id}`);
  });
  router.add('GET', '/lrp', empty);
  router.add('GET', '/recorder', empty);
  router.add('GET', '/recorder/masks', empty);
  router.add('GET', '/node/ids', empty);
  router.add('GET', '/fqdn/cache', empty);
  router.add('DELETE', '/fqdn/cache', () => ({ status: 200 }));
  router.add('GET', '/fqdn/cache/{id}', (req) => {
    lookupEndpoint(req.params.id as string, deps.endpoints.list());
    return { status: 200, body: [] };
  });
  router.add('GET', '/fqdn/names', () => ({ status: 200, body: { DNSPollNames: [], FQDNPolicySelectors: [] } }));
  router.add('GET', '/prefilter', disabled('the XDP prefilter'));
  router.add('PATCH', '/prefilter', disabled('the XDP prefilter'));
  router.add('DELETE', '/prefilter', disabled('the XDP prefilter'));
  for (const p of ['/bgp/peers', '/bgp/routes', '/bgp/route-policies']) router.add('GET', p, disabled('the BGP control plane'));
}
