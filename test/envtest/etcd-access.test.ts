import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { httpRequest, type HttpOptions, type HttpResult } from '../../hack/controlplane/http.js';
import type { RunningControlPlane } from '../../hack/controlplane/controlplane.js';
import { kubectl, sharedControlPlane } from './index.js';

// etcd's gRPC gateway: a range read over every key the apiserver stored.
function rangeOverRegistry(): HttpOptions {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ key: b64('/registry/'), range_end: b64('/registry0'), count_only: true }),
  };
}

async function outcome(url: string, opts: HttpOptions): Promise<HttpResult | Error> {
  return httpRequest(url, opts).catch((err: unknown) => err as Error);
}

describe('envtest etcd access', function () {
  let cp: RunningControlPlane;
  let clientUrl: string;

  before(async function () {
    this.timeout(120_000);
    cp = await sharedControlPlane();
    const url = cp.record.etcd?.clientUrl;
    if (url === undefined) throw new Error('shared control plane has no etcd record');
    clientUrl = url;
  });

  function pkiFile(name: string): Buffer {
    return readFileSync(path.join(cp.record.workDir, name));
  }

  it('serves etcd over TLS only, so plain HTTP reads nothing', async function () {
    const res = await outcome(`${clientUrl.replace(/^https:/, 'http:')}/v3/kv/range`, rangeOverRegistry());
    // Go's TLS listener answers plain HTTP with a 400 or drops the connection; either way no data.
    if (!(res instanceof Error)) {
      expect(res.status).to.equal(400);
      expect(res.body).to.not.include('"count"');
    }
  });

  it('refuses a TLS client without a certificate, and one the apiserver CA signed', async function () {
    const ca = pkiFile('etcd-ca.crt');
    const anonymous = await outcome(`${clientUrl}/v3/kv/range`, { ...rangeOverRegistry(), ca });
    expect(anonymous).to.be.instanceOf(Error);
    expect((anonymous as Error).message).to.match(/certificate|alert|socket hang up|ECONNRESET/i);
    const admin = await outcome(`${clientUrl}/v3/kv/range`, { ...rangeOverRegistry(), ca, cert: pkiFile('admin.crt'), key: pkiFile('admin.key') });
    expect(admin).to.be.instanceOf(Error);
  });

  it('lets the apiserver in with its etcd client certificate, and the apiserver serves', async function () {
    const res = await outcome(`${clientUrl}/v3/kv/range`, {
      ...rangeOverRegistry(),
      ca: pkiFile('etcd-ca.crt'),
      cert: pkiFile('apiserver-etcd-client.crt'),
      key: pkiFile('apiserver-etcd-client.key'),
    });
    if (res instanceof Error) throw res;
    expect(res.status, res.body).to.equal(200);
    expect(Number((JSON.parse(res.body) as { count?: string }).count)).to.be.greaterThan(0);
    expect(await kubectl(cp, ['get', 'namespace', 'default', '-o', 'name'])).to.include({ code: 0, stdout: 'namespace/default\n' });
  });

  it('keeps every private key readable by its owner only, in a directory only its owner enters', function () {
    expect(statSync(cp.record.workDir).mode & 0o777).to.equal(0o700);
    for (const key of ['ca.key', 'etcd-ca.key', 'apiserver.key', 'admin.key', 'etcd-server.key', 'apiserver-etcd-client.key', 'sa-signer.key']) {
      expect(statSync(path.join(cp.record.workDir, key)).mode & 0o777, key).to.equal(0o600);
    }
  });
});
