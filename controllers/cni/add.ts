// CNI ADD in upstream's order: agent config and an IP from the agent (owner ns/pod, with an
// expiration the endpoint's creation cancels), asked together → veth pair → PUT
// /endpoint/cni-attachment-id:<cid>:<ifname> while the pod end is configured → result. Whatever
// ADD made is undone when a later step fails (endpoint, veth, IP), so a failed ADD leaves nothing
// for kubelet's DEL to find.
import { statSync } from 'node:fs';
import type { AgentClient } from '../agent/api/client.js';
import type { EndpointChangeRequest } from '../agent/endpoint/change-request.js';
import { assertIPv4 } from '../../datapath/netns/validate.js';
import { agentCalls, agentFailure, isAgentStatus, whenAgentAnswers, type IPAMResponse } from './agent.js';
import type { CniArgs } from './args.js';
import { CNI_ERR, CniError } from './errors.js';
import type { NetConf } from './netconf.js';
import { configurePodInterface, createPodLink, hostIfnameFor, removePodLink, type PodLink, type PodLinkSpec } from './pod-link.js';
import type { PluginLog, StepTimer } from './plugin-log.js';
import { addResult, type CniResult } from './result.js';

export interface CommandContext {
  args: CniArgs;
  conf: NetConf;
  agent: AgentClient;
  log: PluginLog;
  timer: StepTimer;
}

const DEFAULT_MTU = 1500;

function podIdentity(args: CniArgs): { namespace: string; name: string } {
  const namespace = args.pod.K8S_POD_NAMESPACE ?? '';
  const name = args.pod.K8S_POD_NAME ?? '';
  if (namespace === '' || name === '') {
    throw new CniError(CNI_ERR.invalidEnvironment, 'invalid CNI_ARGS', 'K8S_POD_NAMESPACE and K8S_POD_NAME are required: the endpoint takes its identity from the Pod');
  }
  return { namespace, name };
}

function checkNetns(netns: string): void {
  try {
    statSync(netns);
  } catch (err) {
    throw new CniError(CNI_ERR.invalidEnvironment, 'invalid CNI_NETNS', `${netns}: ${(err as Error).message}`);
  }
}

interface Allocation {
  ip: string;
  router: string;
  expirationUuid?: string;
  poolName?: string;
}

function allocation(res: IPAMResponse): Allocation {
  const raw = res.address?.ipv4;
  if (!raw) throw new CniError(CNI_ERR.ipamFailed, 'IP allocation failed', 'agent answered without address.ipv4');
  const router = res['host-addressing']?.ipv4?.ip;
  if (!router) throw new CniError(CNI_ERR.ipamFailed, 'IP allocation failed', 'agent answered without host-addressing.ipv4.ip (router IP)');
  const ip = raw.split('/')[0] ?? raw;
  try {
    assertIPv4(ip, 'address.ipv4');
    assertIPv4(router, 'host-addressing.ipv4.ip');
  } catch (err) {
    throw new CniError(CNI_ERR.ipamFailed, 'IP allocation failed', (err as Error).message);
  }
  const expirationUuid = res.ipv4?.['expiration-uuid'] ?? res.address?.['ipv4-expiration-uuid'];
  const poolName = res.address?.['ipv4-pool-name'];
  return { ip, router, ...(expirationUuid ? { expirationUuid } : {}), ...(poolName ? { poolName } : {}) };
}

function changeRequest(ctx: CommandContext, pod: { namespace: string; name: string }, a: Allocation, link: PodLink): EndpointChangeRequest {
  const { args } = ctx;
  return {
    state: 'waiting-for-identity',
    'sync-build-endpoint': true,
    'container-id': args.containerId,
    'container-interface-name': args.ifname,
    'container-netns-path': args.netns,
    'interface-name': link.hostIfname,
    'interface-index': link.hostIfindex,
    mac: link.podMac,
    'host-mac': link.hostMac,
    addressing: {
      ipv4: a.ip,
      ...(a.expirationUuid ? { 'ipv4-expiration-uuid': a.expirationUuid } : {}),
      ...(a.poolName ? { 'ipv4-pool-name': a.poolName } : {}),
    },
    'k8s-pod-name': pod.name,
    'k8s-namespace': pod.namespace,
    ...(args.pod.K8S_POD_UID ? { 'k8s-uid': args.pod.K8S_POD_UID } : {}),
    labels: [],
    'datapath-configuration': {},
  };
}

export async function cmdAdd(ctx: CommandContext): Promise<CniResult> {
  const { args, conf, agent, log, timer } = ctx;
  if (conf.prevResult !== undefined) {
    throw new CniError(CNI_ERR.invalidNetworkConfig, 'invalid network configuration', 'field "prevResult": set, but chaining is not supported (chaining-mode none)');
  }
  const pod = podIdentity(args);
  checkNetns(args.netns);
  const owner = `${pod.namespace}/${pod.name}`;

  const undo: [string, () => Promise<unknown>][] = [];
  try {
    // Upstream reads the agent's configuration once per ADD; the address does not depend on it,
    // so both are asked at once (an address given for nothing is released below).
    const [configAnswer, ipamAnswer] = await Promise.allSettled([
      whenAgentAnswers(() => agentCalls.config(agent)),
      whenAgentAnswers(() => agentCalls.allocate(agent, owner)),
    ]);
    if (ipamAnswer.status === 'rejected') throw agentFailure(ipamAnswer.reason, CNI_ERR.ipamFailed, `allocating an IP for ${owner} (POST /ipam)`);
    const alloc = allocation(ipamAnswer.value);
    undo.unshift([`release IP ${alloc.ip}`, () => agentCalls.release(agent, alloc.ip).catch(ignoreStatus(404))]);
    if (configAnswer.status === 'rejected') throw agentFailure(configAnswer.reason, CNI_ERR.agentApiFailed, 'reading the agent configuration (GET /config)');
    const status = configAnswer.value.status ?? {};
    if (status.datapathMode && status.datapathMode !== 'veth') {
      throw new CniError(CNI_ERR.invalidNetworkConfig, 'unsupported datapath mode', `agent runs datapathMode ${JSON.stringify(status.datapathMode)}; this plugin builds veth pairs only`);
    }
    timer.mark('config_ipam');

    const spec: PodLinkSpec = {
      containerId: args.containerId,
      ifname: args.ifname,
      netnsPath: args.netns,
      ip: alloc.ip,
      router: alloc.router,
      mtu: conf.mtu || status.deviceMTU || DEFAULT_MTU,
      routeMtu: status.routeMTU ?? 0,
    };
    const linkFailure = (err: unknown) => new CniError(CNI_ERR.linkSetupFailed, 'setting up the pod interface failed', (err as Error).message, { cause: err });
    undo.unshift([`delete veth ${hostIfnameFor(args.containerId, args.ifname)}`, () => removePodLink(hostIfnameFor(args.containerId, args.ifname))]);
    const link = await createPodLink(spec).catch((err: unknown) => {
      throw linkFailure(err);
    });
    timer.mark('veth_host');

    // The endpoint needs only the host end: the pod end is configured meanwhile. A PUT that never
    // answered may still have created the endpoint, so its deletion is in the rollback either way.
    undo.unshift(['delete endpoint', () => agentCalls.deleteEndpoint(agent, args.containerId, args.ifname).catch(ignoreStatus(404))]);
    const [podSide, endpoint] = await Promise.allSettled([
      configurePodInterface(spec, link),
      agentCalls.putEndpoint(agent, args.containerId, args.ifname, changeRequest(ctx, pod, alloc, link)),
    ]);
    if (podSide.status === 'rejected') throw linkFailure(podSide.reason);
    if (endpoint.status === 'rejected') throw agentFailure(endpoint.reason, CNI_ERR.endpointCreateFailed, 'creating the endpoint (PUT /endpoint)');
    timer.mark('endpoint');

    const result = addResult({ ...link, ifname: args.ifname, sandbox: args.netns, ip: alloc.ip, router: alloc.router }, conf.cniVersion);
    timer.mark('result');
    log.info('endpoint created', { ip: alloc.ip, hostIfname: link.hostIfname });
    return result;
  } catch (err) {
    const failures: string[] = [];
    for (const [what, step] of undo) {
      await step().catch((e: unknown) => failures.push(`${what}: ${(e as Error).message}`));
    }
    log.warn('ADD failed and was rolled back', { error: (err as Error).message, rollbackFailures: failures });
    if (failures.length === 0) throw err;
    const e = err instanceof CniError ? err : new CniError(CNI_ERR.internal, 'internal error', (err as Error).message);
    throw new CniError(e.code, e.msg, `${e.details}; rollback incomplete: ${failures.join('; ')}`, { cause: err });
  }
}

function ignoreStatus(status: number): (err: unknown) => void {
  return (err) => {
    if (!isAgentStatus(err, status)) throw err;
  };
}
