// Operators for the integration tests: the real assembly (controllers/operator/operator.ts) with
// short intervals, its Lease and namespaced watches in the test's namespace, and cleanup of the
// cluster-scoped objects a test creates.
import { randomBytes } from 'node:crypto';
import { loadOperatorConfig } from '../../../controllers/config/operator.js';
import { buildOperator, type Operator } from '../../../controllers/operator/operator.js';
import { isNotFound, type ApiClient } from '../../../controllers/runtime/apiclient.js';
import { collectionPath, objectPath, pods, type ResourceType } from '../../../controllers/runtime/kinds.js';
import type { Pod } from '../../../controllers/operator/resources.js';
import { newLogger } from '../../../controllers/runtime/log.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { pollUntil } from '../../envtest/poll.js';
import { newApiClient } from '../../../controllers/runtime/apiclient.js';
import { httpRequest } from '../../../hack/controlplane/http.js';

export interface RunningOperator extends Operator {
  done: Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  client: ApiClient;
  namespace: string;
  /** Extra command-line options, e.g. ['--identity-gc-interval=200ms']. */
  args?: string[];
  identity?: string;
  nodeGC?: boolean;
  /** Namespace of the Lease; default the test namespace. */
  leaseNamespace?: string;
}

/** Leader election of the test operators: lease 2 s, renew deadline 1.5 s, retry 0.25 s. */
export const SHORT_LEASE_ARGS = ['--leader-election-lease-duration=2s', '--leader-election-renew-deadline=1500ms', '--leader-election-retry-period=250ms'];

export function startOperator(opts: StartOptions): RunningOperator {
  const config = loadOperatorConfig(
    [
      ...SHORT_LEASE_ARGS,
      '--operator-api-serve-addr=127.0.0.1:0',
      '--operator-prometheus-serve-addr=127.0.0.1:0',
      // A list option: given twice it would hold both pools.
      ...((opts.args ?? []).some((a) => a.startsWith('--cluster-pool-ipv4-cidr=')) ? [] : ['--cluster-pool-ipv4-cidr=10.200.0.0/16']),
      ...(opts.args ?? []),
    ],
    {},
  );
  const operator = buildOperator({
    config,
    client: opts.client,
    logger: newLogger(`operator-test/${opts.identity ?? 'op'}`, process.env.CILIUM_TS_LOG_LEVEL ?? 'error'),
    identity: opts.identity ?? `op-${randomBytes(3).toString('hex')}`,
    leaseNamespace: opts.leaseNamespace ?? opts.namespace,
    namespace: opts.namespace,
    policyStatusDebounceMs: 100,
    nodeGC: opts.nodeGC ?? false,
  });
  const done = operator.manager.start();
  return {
    ...operator,
    done,
    stop: async () => {
      operator.manager.stop();
      await done.catch(() => undefined);
    },
  };
}

export async function waitLeading(op: Operator, timeoutMs = 5000): Promise<void> {
  await pollUntil(`operator ${op.identity} leads`, () => op.manager.isLeader, timeoutMs);
}

export const testId = (): string => randomBytes(3).toString('hex');

export async function create<T>(client: ApiClient, type: ResourceType, body: object, namespace?: string): Promise<T> {
  return client.request<T>('POST', collectionPath(type, namespace), { body: { apiVersion: type.apiVersion, kind: type.kind, ...body } });
}

export async function getObject<T>(client: ApiClient, type: ResourceType, name: string, namespace?: string): Promise<T | undefined> {
  try {
    return await client.request<T>('GET', objectPath(type, name, namespace));
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function deleteIfPresent(client: ApiClient, type: ResourceType, name: string, namespace?: string): Promise<void> {
  await client.request('DELETE', objectPath(type, name, namespace)).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}

/** Polls the apiserver until `check` holds for the object (or its absence). */
export async function waitForObject<T>(client: ApiClient, type: ResourceType, name: string, what: string, check: (obj: T | undefined) => boolean, timeoutMs = 10_000, namespace?: string): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const obj = await getObject<T>(client, type, name, namespace);
    if (check(obj)) return obj;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}: last seen ${JSON.stringify(obj)?.slice(0, 800)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A Pod object (no kubelet runs it; it only has to exist for the CEP GC). */
export function createPod(client: ApiClient, namespace: string, name: string): Promise<Pod> {
  return create<Pod>(client, pods, { metadata: { name, namespace }, spec: { containers: [{ name: 'c', image: 'localhost/cilium-ts/testbox:v1' }] } }, namespace);
}

export interface TestContext {
  client: ApiClient;
  kubeconfigPath: string;
  /** The suite's namespace. */
  ns: string;
  /** Starts an operator (Lease and namespaced watches in `ns` unless told otherwise), stopped after the test. */
  operator(opts?: Omit<StartOptions, 'client' | 'namespace'>): RunningOperator;
  /** Deletes this cluster-scoped object after the test. */
  track(type: ResourceType, name: string): void;
  /** Runs `fn` after the test, before operators stop and tracked objects go. */
  onCleanup(fn: () => Promise<unknown>): void;
}

/**
 * Registers the suite's hooks (call inside describe): a namespace for the suite, and after each
 * test its operators stopped and the cluster-scoped objects it tracked deleted, pass or fail.
 */
export function operatorTestContext(): TestContext {
  const operators: RunningOperator[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  let tracked: { type: ResourceType; name: string }[] = [];
  let namespace: { name: string; cleanup(): Promise<void> } | undefined;
  const ctx = {
    operator(opts: Omit<StartOptions, 'client' | 'namespace'> = {}) {
      const op = startOperator({ ...opts, client: ctx.client, namespace: ctx.ns });
      operators.push(op);
      return op;
    },
    track: (type: ResourceType, name: string) => void tracked.push({ type, name }),
    onCleanup: (fn: () => Promise<unknown>) => void cleanups.push(fn),
  } as TestContext;
  before(async () => {
    const cp = await sharedControlPlane();
    ctx.client = newApiClient(cp.kubeConfig);
    ctx.kubeconfigPath = cp.kubeconfigPath;
    namespace = await testNamespace(cp);
    ctx.ns = namespace.name;
  });
  afterEach(async () => {
    for (const fn of cleanups.splice(0)) await fn();
    await Promise.all(operators.splice(0).map((o) => o.stop()));
    await Promise.all(tracked.map((t) => deleteIfPresent(ctx.client, t.type, t.name)));
    tracked = [];
  });
  after(async () => namespace?.cleanup());
  return ctx;
}

export const httpGet = (port: number, path: string) => httpRequest(`http://127.0.0.1:${port}${path}`);
