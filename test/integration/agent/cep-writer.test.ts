// The agent's CiliumEndpoint writer on the real apiserver: it writes and deletes only the CEP of
// its own pod (by the Pod owner uid), and a CEP replaced by another pod's between its GET and its
// write is refused by the apiserver's uid precondition instead of being overwritten or deleted.
import { expect } from 'chai';
import type { CiliumEndpoint } from '../../../crds/gen/index.js';
import { sharedControlPlane, testNamespace } from '../../envtest/index.js';
import { isConflict, isNotFound, newApiClient, type ApiClient, type RequestOptions, type WatchEvent } from '../../../controllers/runtime/apiclient.js';
import { ciliumEndpoints, objectPath } from '../../../controllers/runtime/kinds.js';
import { apply } from '../../../controllers/runtime/ssa.js';
import { ciliumEndpointWriter } from '../../../controllers/agent/daemon/sources.js';
import { buildCiliumEndpoint } from '../../../controllers/agent/endpoint/cep.js';
import { endpointRecord } from '../../../controllers/agent/endpoint/testing.js';

/** The real client, running `before` once ahead of the first request of `method`. */
class InterposingClient implements ApiClient {
  constructor(
    private readonly inner: ApiClient,
    private readonly method: string,
    private before?: () => Promise<void>,
  ) {}
  async request<T>(method: string, apiPath: string, opts?: RequestOptions): Promise<T> {
    const hook = method === this.method ? this.before : undefined;
    if (hook !== undefined) {
      this.before = undefined;
      await hook();
    }
    return this.inner.request<T>(method, apiPath, opts);
  }
  watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    return this.inner.watch(apiPath, onEvent, signal);
  }
}

describe('CiliumEndpoint writer (real apiserver)', function () {
  this.timeout(60_000);
  let client: ApiClient;
  let ns: { name: string; cleanup(): Promise<void> } | undefined;

  before(async () => {
    const cp = await sharedControlPlane();
    client = newApiClient(cp.kubeConfig);
    ns = await testNamespace(cp);
  });
  after(async () => ns?.cleanup());

  const name = 'web-1';
  const ours = (podUid: string, state = 'ready') =>
    buildCiliumEndpoint(endpointRecord(1, { namespace: ns?.name, podName: name, podUid, state: state as never }), { nodeName: 'node-1' });
  const get = () =>
    client.request<CiliumEndpoint>('GET', objectPath(ciliumEndpoints, name, ns?.name)).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
  const remove = () => client.request('DELETE', objectPath(ciliumEndpoints, name, ns?.name)).catch(() => undefined);
  const theirs = () => apply(client, ciliumEndpoints, ours('uid-theirs'), { fieldManager: 'other-agent', force: true });
  afterEach(remove);

  it('creates, then updates the CEP of its own pod', async () => {
    const writer = ciliumEndpointWriter(client);
    expect(await writer.apply(ours('uid-ours', 'regenerating'))).to.equal(true);
    expect(await writer.apply(ours('uid-ours', 'ready'))).to.equal(true);
    const cep = await get();
    expect([cep?.metadata.ownerReferences?.[0]?.uid, cep?.status?.state]).to.deep.equal(['uid-ours', 'ready']);
  });

  it('neither overwrites nor deletes the CEP of a pod re-created under the same name', async () => {
    const writer = ciliumEndpointWriter(client);
    await theirs();
    const before = await get();
    expect(await writer.apply(ours('uid-ours', 'not-ready'))).to.equal(false);
    await writer.delete(ns?.name ?? '', name, 'uid-ours');
    const after = await get();
    expect(after?.metadata.resourceVersion, 'untouched').to.equal(before?.metadata.resourceVersion);
    await writer.delete(ns?.name ?? '', name, 'uid-theirs');
    expect(await get(), 'its own pod uid deletes it').to.equal(undefined);
    await writer.delete(ns?.name ?? '', name, 'uid-theirs');
  });

  it('fails with a conflict when the CEP is replaced by another pod’s between its read and its write', async () => {
    await ciliumEndpointWriter(client).apply(ours('uid-ours'));
    const swap = async () => {
      await remove();
      await theirs();
    };
    const racingApply = ciliumEndpointWriter(new InterposingClient(client, 'PATCH', swap)).apply(ours('uid-ours', 'not-ready'));
    expect(isConflict(await racingApply.catch((err: unknown) => err)), 'apply refused').to.equal(true);
    expect((await get())?.metadata.ownerReferences?.[0]?.uid).to.equal('uid-theirs');
    expect(await ciliumEndpointWriter(client).apply(ours('uid-ours', 'not-ready')), 'the retry leaves it').to.equal(false);

    await remove();
    await ciliumEndpointWriter(client).apply(ours('uid-ours'));
    const racingDelete = ciliumEndpointWriter(new InterposingClient(client, 'DELETE', swap)).delete(ns?.name ?? '', name, 'uid-ours');
    expect(isConflict(await racingDelete.catch((err: unknown) => err)), 'delete refused').to.equal(true);
    expect((await get())?.metadata.ownerReferences?.[0]?.uid).to.equal('uid-theirs');
  });
});
