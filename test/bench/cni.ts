// `npm run bench:cni`: cilium-cni against the reference `bridge` + `host-local` plugins on the
// local cluster's node (`npm run cluster -- up`; started here when it is down, and then stopped).
// Two measurements, each for both plugins in one run:
// - CNI ADD / DEL: each plugin process called as libcni calls it (test/bench/cni-invoke.ts), from
//   inside the node's network namespace as its containerd calls it, on a fresh network namespace, ours with the agent's own conflist and CNI_ARGS naming a real
//   (scheduling-gated) Pod as containerd would; the two plugins alternate call by call.
// - pod_ready: Pod create → Ready under kubelet + containerd, one pod at a time (--concurrency),
//   first with the node's cilium conflist, then with a bridge conflist put in front of it in the
//   conf dir (containerd reloads the dir; crictl info confirms which network is in use).
// Progress goes to stderr; the last stdout line is one JSON object. Everything it creates
// (namespace, pods, netns, the bridge and its conflist, host-local state) is removed at the end,
// on SIGINT/SIGTERM, and by `--cleanup` after a run that was killed outright.
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { V1Pod } from '@kubernetes/client-node';
import { writeCniConfig, type Conflist } from '../../controllers/agent/cni-config.js';
import { loadKubeConfig, newApiClient, type ApiClient } from '../../controllers/runtime/apiclient.js';
import { collectionPath, pods } from '../../controllers/runtime/kinds.js';
import { newLogger } from '../../controllers/runtime/log.js';
import { Resource } from '../../controllers/runtime/resource.js';
import { CILIUM_CONFLIST, type NodeInfo } from '../../hack/cluster-daemons.js';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { nodeLayout } from '../../hack/node/layout.js';
import { deleteLink } from '../../datapath/netns/link.js';
import { createNetns, deleteNetns, listNetns } from '../../datapath/netns/netns.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { runWithExitCode } from '../envtest/command.js';
import { kubectl, kubectlOk, localStateDir, readNodeInfo, stopLocalCluster, TESTBOX_HTTPD, TESTBOX_IMAGE, useLocalCluster, waitFor, type LocalCluster } from '../node/cluster.js';
import { inPool, p50p99 } from './control-plane-objects.js';
import { NetnsInvoker, type PluginCall } from './cni-invoke.js';
import { benchMain, positiveIntFlag } from './main.js';

const NAMESPACE = 'cni-bench';
const NETNS_PREFIX = 'ctscni';
const BRIDGE = 'ctsbench0';
const BRIDGE_NETWORK = 'cni-bench-bridge';
// Sorts before 05-cilium.conflist: containerd 1.6 uses the first file of the dir.
const BRIDGE_CONF_FILE = '00-cni-bench-bridge.conflist';
const BRIDGE_SUBNET = '172.30.250.0/24';
const PHASE_LABEL = 'cni-bench-phase';
const GATE = 'cilium-ts.io/cni-bench';
// Calls per plugin before the counted ones (page cache, first identity allocation).
const WARMUP = 3;
const VERSION_SAMPLES = 20;
const READY_TIMEOUT_MS = 120_000;
const log = newLogger('bench-cni', 'warn');

type Plugin = 'cilium' | 'bridge';

interface Options {
  pods: number;
  concurrency: number;
}

function parseOptions(argv: string[]): Options | 'cleanup' {
  if (argv.includes('--cleanup')) return 'cleanup';
  return { pods: positiveIntFlag(argv, '--pods', 100), concurrency: positiveIntFlag(argv, '--concurrency', 1) };
}

function progress(message: string): void {
  console.error(`[bench:cni] ${message}`);
}

function ipamDir(node: NodeInfo): string {
  return path.join(nodeLayout(localStateDir(), node.name).cniIpamDir, 'cni-bench');
}

function bridgeConflist(node: NodeInfo): Conflist {
  return {
    cniVersion: '1.0.0',
    name: BRIDGE_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge: BRIDGE,
        isGateway: true,
        ipMasq: false,
        ipam: { type: 'host-local', ranges: [[{ subnet: BRIDGE_SUBNET }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir(node) },
      },
    ],
  };
}

function ms(samples: number[]) {
  return p50p99(samples);
}

function seconds(samplesMs: number[]) {
  const { p50, p99 } = p50p99(samplesMs);
  return { p50: Math.round(p50) / 1000, p99: Math.round(p99) / 1000 };
}

/** The pod network containerd uses for new sandboxes now (crictl info). */
async function activeNetwork(node: NodeInfo): Promise<string | undefined> {
  const r = await runWithExitCode(path.join(repoRoot, '.local', 'bin', 'crictl'), ['--runtime-endpoint', `unix://${node.containerdSocket}`, 'info']);
  if (r.code !== 0) throw new Error(`crictl info: exit ${r.code}: ${r.stderr.trim()}`);
  const info = JSON.parse(r.stdout) as { cniconfig?: { Networks?: { Config?: { Name?: string }; IFName?: string }[] } };
  return info.cniconfig?.Networks?.find((n) => n.IFName === 'eth0')?.Config?.Name;
}

async function useNetwork(node: NodeInfo, network: string): Promise<void> {
  await waitFor(`containerd to use network ${network}`, async () => ((await activeNetwork(node)) === network ? true : undefined), 30_000, 100);
}

async function sandboxesLeft(node: NodeInfo): Promise<number> {
  const r = await runWithExitCode(path.join(repoRoot, '.local', 'bin', 'crictl'), ['--runtime-endpoint', `unix://${node.containerdSocket}`, 'pods', '--namespace', NAMESPACE, '--state', 'ready', '-q']);
  if (r.code !== 0) throw new Error(`crictl pods: exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
}

function benchPod(name: string, phase: string, gated: boolean): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'cni-bench', [PHASE_LABEL]: phase } },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(gated ? { schedulingGates: [{ name: GATE }] } : {}),
      containers: [{ name: 'testbox', image: TESTBOX_IMAGE, command: ['sh', '-c', TESTBOX_HTTPD] }],
    },
  };
}

const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

class CniBench {
  private cluster?: LocalCluster;
  private client?: ApiClient;
  private invoker?: NetnsInvoker;

  constructor(private readonly opts: Options) {}

  async run(): Promise<unknown> {
    progress('cluster: using the one that is up, or starting it');
    const cluster = await useLocalCluster();
    this.cluster = cluster;
    this.client = newApiClient(loadKubeConfig(cluster.kubeconfigPath));
    const node = cluster.node;
    await sweep(node);
    await kubectlOk(cluster, ['create', 'namespace', NAMESPACE]);

    this.invoker = NetnsInvoker.start({ path: node.netns });
    const version = await this.versionTimes(node);
    const calls = await this.pluginCalls(node);
    await useNetwork(node, 'cilium');
    const ciliumReady = await this.podReadyPhase('cilium');
    await writeCniConfig(path.join(node.cniConfDir, BRIDGE_CONF_FILE), bridgeConflist(node));
    await useNetwork(node, BRIDGE_NETWORK);
    const bridgeReady = await this.podReadyPhase('bridge');
    await rm(path.join(node.cniConfDir, BRIDGE_CONF_FILE), { force: true });
    await useNetwork(node, 'cilium');

    return {
      cni_add_ms: ms(calls.cilium.add),
      cni_del_ms: ms(calls.cilium.del),
      bridge_add_ms: ms(calls.bridge.add),
      bridge_del_ms: ms(calls.bridge.del),
      pod_ready_s: seconds(ciliumReady),
      bridge_pod_ready_s: seconds(bridgeReady),
      cni_add_steps_p50_ms: calls.addSteps,
      cni_version_ms: ms(version.cilium),
      bridge_version_ms: ms(version.bridge),
      pods: this.opts.pods,
    };
  }

  async cleanup(): Promise<void> {
    const node = this.cluster?.node ?? (await readNodeInfo());
    await runCleanup('bench:cni', [
      ['stop the CNI call helper', () => this.invoker?.close()],
      ['remove what the run created', () => sweep(node)],
      ['stop the cluster it started', () => stopLocalCluster(this.cluster)],
    ]);
  }

  private conflists(node: NodeInfo): Promise<Record<Plugin, Conflist>> {
    return readFile(path.join(node.cniConfDir, CILIUM_CONFLIST), 'utf8').then((text) => ({ cilium: JSON.parse(text) as Conflist, bridge: bridgeConflist(node) }));
  }

  /** VERSION: process start and load alone, nothing else. */
  private async versionTimes(node: NodeInfo): Promise<Record<Plugin, number[]>> {
    const lists = await this.conflists(node);
    const out: Record<Plugin, number[]> = { cilium: [], bridge: [] };
    for (let i = 0; i < VERSION_SAMPLES; i++) {
      for (const plugin of ['cilium', 'bridge'] as const) {
        const r = await (this.invoker as NetnsInvoker).invoke({ command: 'VERSION', binDir: node.cniBinDir, conflist: lists[plugin], containerId: '', netns: '', ifName: '', args: '' });
        out[plugin].push(r.ms);
      }
    }
    progress(`VERSION p50: cilium-cni ${ms(out.cilium).p50} ms, bridge ${ms(out.bridge).p50} ms`);
    return out;
  }

  private async pluginCalls(node: NodeInfo): Promise<Record<Plugin, { add: number[]; del: number[] }> & { addSteps: Record<string, number> }> {
    const lists = await this.conflists(node);
    const total = WARMUP + this.opts.pods;
    progress(`CNI ADD/DEL: ${total} calls of each plugin on fresh netns (${WARMUP} warm-up)`);
    const gated = await this.createGatedPods(total);
    const out: Record<Plugin, { add: number[]; del: number[] }> = { cilium: { add: [], del: [] }, bridge: { add: [], del: [] } };
    const counted = new Set<string>();
    for (let i = 0; i < total; i++) {
      for (const plugin of ['cilium', 'bridge'] as const) {
        const netns = `${NETNS_PREFIX}-${plugin}-${i}`;
        const pod = gated[i] as { name: string; uid: string };
        const containerId = randomBytes(32).toString('hex');
        const call: PluginCall = {
          command: 'ADD',
          binDir: node.cniBinDir,
          conflist: lists[plugin],
          containerId,
          netns: `/run/netns/${netns}`,
          ifName: 'eth0',
          args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${NAMESPACE};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${containerId};K8S_POD_UID=${pod.uid}`,
        };
        await createNetns(netns);
        try {
          const invoker = this.invoker as NetnsInvoker;
          const add = await invoker.invoke(call);
          const del = await invoker.invoke({ ...call, command: 'DEL', prevResult: add.output });
          if (i >= WARMUP) {
            if (plugin === 'cilium') counted.add(containerId);
            out[plugin].add.push(add.ms);
            out[plugin].del.push(del.ms);
          }
        } finally {
          await deleteNetns(netns);
        }
      }
      if ((i + 1) % 25 === 0) progress(`  ${i + 1}/${total}`);
    }
    progress(`ADD p50: cilium-cni ${ms(out.cilium.add).p50} ms, bridge ${ms(out.bridge.add).p50} ms; DEL p50: ${ms(out.cilium.del).p50} / ${ms(out.bridge.del).p50} ms`);
    return { ...out, addSteps: await addSteps(lists.cilium, counted) };
  }

  // Pods the direct calls name in CNI_ARGS, as containerd names the pod it networks; the gate
  // keeps them off kubelet.
  private async createGatedPods(count: number): Promise<{ name: string; uid: string }[]> {
    const client = this.client as ApiClient;
    const out: { name: string; uid: string }[] = [];
    await inPool(
      Array.from({ length: count }, (_, i) => i),
      8,
      async (i) => {
        const created = await client.request<V1Pod>('POST', collectionPath(pods, NAMESPACE), { body: benchPod(`gated-${i}`, 'gated', true) });
        out[i] = { name: created.metadata?.name ?? '', uid: created.metadata?.uid ?? '' };
      },
    );
    return out;
  }

  private async podReadyPhase(phase: Plugin): Promise<number[]> {
    const client = this.client as ApiClient;
    const node = (this.cluster as LocalCluster).node;
    progress(`pod create → Ready with ${phase}: ${this.opts.pods} pods, ${this.opts.concurrency} at a time`);
    const readyAt = new Map<string, number>();
    const waiters = new Map<string, () => void>();
    const watch = new Resource<V1Pod>({ name: `cni-bench-${phase}`, client, type: pods, namespace: NAMESPACE, labelSelector: `${PHASE_LABEL}=${phase}`, logger: log });
    const seen = (p: V1Pod) => {
      const name = p.metadata?.name ?? '';
      if (!isReady(p) || readyAt.has(name)) return;
      readyAt.set(name, performance.now());
      waiters.get(name)?.();
    };
    watch.on({ add: seen, update: (_o, n) => seen(n) });
    watch.start();
    const samples: number[] = [];
    try {
      await watch.waitForSync(AbortSignal.timeout(30_000));
      await inPool(
        Array.from({ length: this.opts.pods }, (_, i) => `${phase}-${i}`),
        this.opts.concurrency,
        async (name) => {
          const ready = new Promise<void>((resolve) => waiters.set(name, resolve));
          const started = performance.now();
          await client.request('POST', collectionPath(pods, NAMESPACE), { body: benchPod(name, phase, false) });
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`pod ${NAMESPACE}/${name} (${phase}) not Ready within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
          });
          try {
            await Promise.race([ready, timeout]);
          } finally {
            clearTimeout(timer);
          }
          samples.push((readyAt.get(name) as number) - started);
        },
      );
    } finally {
      await watch.stop();
    }
    progress(`pod_ready p50 with ${phase}: ${seconds(samples).p50} s; deleting the pods`);
    await client.request('DELETE', `${collectionPath(pods, NAMESPACE)}?labelSelector=${encodeURIComponent(`${PHASE_LABEL}=${phase}`)}`);
    await waitFor(
      `the ${phase} pods and their sandboxes gone`,
      async () => {
        const left = await client.request<{ items: V1Pod[] }>('GET', `${collectionPath(pods, NAMESPACE)}?labelSelector=${encodeURIComponent(`${PHASE_LABEL}=${phase}`)}`);
        return left.items.length === 0 && (await sandboxesLeft(node)) === 0 ? true : undefined;
      },
      300_000,
      500,
    );
    return samples;
  }
}

/**
 * Where cilium-cni's ADD time goes: the p50 of each step its log records for the counted calls
 * (controllers/cni/plugin.ts: `durationsMs`, each step from the end of the one before).
 */
async function addSteps(conflist: Conflist, containerIds: ReadonlySet<string>): Promise<Record<string, number>> {
  const file = conflist.plugins[0]?.['log-file'];
  if (typeof file !== 'string' || file === '') return {};
  const steps: Record<string, number[]> = {};
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    if (!line.includes('"CNI ADD done"')) continue;
    const entry = JSON.parse(line) as { containerID?: string; durationsMs?: Record<string, number> };
    if (entry.containerID === undefined || !containerIds.has(entry.containerID)) continue;
    for (const [step, value] of Object.entries(entry.durationsMs ?? {})) (steps[step] ??= []).push(value);
  }
  return Object.fromEntries(Object.entries(steps).map(([step, values]) => [step, ms(values).p50]));
}

/** Removes whatever a run (this one or a killed one) created; the cluster itself stays. */
async function sweep(node: NodeInfo | undefined): Promise<void> {
  const steps: [string, () => Promise<unknown>][] = [];
  if (node !== undefined) {
    steps.push(['remove the bridge conflist', () => rm(path.join(node.cniConfDir, BRIDGE_CONF_FILE), { force: true })]);
    const cluster = { kubeconfigPath: path.join(localStateDir(), 'kubeconfig') };
    steps.push([
      `delete namespace ${NAMESPACE}`,
      async () => {
        const r = await kubectl(cluster, ['delete', 'namespace', NAMESPACE, '--ignore-not-found', '--wait=true', '--timeout=300s']);
        if (r.code !== 0) throw new Error(r.stderr.trim());
        await kubectl(cluster, ['delete', 'ciliumidentities', '-l', `io.kubernetes.pod.namespace=${NAMESPACE}`, '--ignore-not-found']);
      },
    ]);
    steps.push(['remove the host-local state', () => rm(ipamDir(node), { recursive: true, force: true })]);
  }
  steps.push([
    'delete leftover netns',
    async () => {
      for (const ns of await listNetns()) if (ns.startsWith(`${NETNS_PREFIX}-`)) await deleteNetns(ns);
    },
  ]);
  // The bridge plugin made it in the node's namespace, where its runtime runs it.
  if (node !== undefined) steps.push([`delete bridge ${BRIDGE}`, () => deleteLink(BRIDGE, { path: node.netns })]);
  await runCleanup('bench:cni sweep', steps);
}

await benchMain('bench:cni', fileURLToPath(import.meta.url), () => parseOptions(process.argv.slice(2)), async () => sweep(await readNodeInfo()), (opts) => new CniBench(opts));
