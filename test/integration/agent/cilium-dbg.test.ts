// Conformance with upstream's own client: the real `cilium-dbg` (Go, v1.20.2, built by
// hack/install-tools.sh into .local/bin) against a real agent's socket. Each command must exit 0
// and print our data (endpoint ids, identities, labels, addresses, policy); where it cannot decode
// a shape of ours, the shape is wrong.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { repoRoot } from '../../../hack/controlplane/paths.js';
import { ApiTestAgent } from './api-fixture.js';

const CILIUM_DBG = path.join(repoRoot, '.local/bin/cilium-dbg');
const run = promisify(execFile);

interface Endpoint {
  id: number;
  status: { identity: { id: number; labels: string[] }; networking: { addressing: { ipv4: string }[] }; state: string };
}

describe('upstream cilium-dbg against our agent socket', function () {
  this.timeout(120_000);
  let agent: ApiTestAgent;
  let ep: Endpoint;
  let ip = '';

  /** Runs cilium-dbg against the agent; rejects with its output when it exits non-zero. */
  async function dbg(...args: string[]): Promise<string> {
    try {
      const { stdout } = await run(CILIUM_DBG, ['-H', `unix://${agent.socketPath}`, ...args], { timeout: 30_000, env: { ...process.env, HOME: agent.stateDir } });
      return stdout;
    } catch (err) {
      const e = err as Error & { code?: number; stdout?: string; stderr?: string };
      throw new Error(`cilium-dbg ${args.join(' ')}: exit ${String(e.code)}\nstdout: ${e.stdout ?? ''}\nstderr: ${e.stderr ?? ''}`, { cause: err });
    }
  }

  before(async function () {
    if (!existsSync(CILIUM_DBG)) {
      console.warn(`skipping: ${CILIUM_DBG} is missing; build it with \`bash hack/install-tools.sh all\``);
      this.skip();
    }
    agent = await ApiTestAgent.start('db', '10.219.8.0/24');
    await agent.createPod('web', { app: 'web', tier: 'front' });
    const containerId = randomBytes(16).toString('hex');
    const alloc = await agent.client.request<{ address: { ipv4: string } }>('POST', '/ipam', { query: { owner: `${agent.namespace}/web` }, headers: { expiration: 'true' } });
    ip = alloc.address.ipv4;
    ep = await agent.client.request<Endpoint>('PUT', `/endpoint/cni-attachment-id:${containerId}:eth0`, { body: agent.changeRequest('web', containerId, { ipv4: ip }) });
    await agent.applyPolicy('web-ingress', { endpointSelector: { matchLabels: { app: 'web' } }, ingress: [{ fromEntities: ['world'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }] }, ep.id, 'ingress');
  });

  after(async () => {
    await agent?.cleanup();
  });

  it('status: exit 0, Cilium Ok, our IPAM and identity range', async () => {
    // Ready takes the watches' first lists; status exits 1 until then, as upstream's.
    const out = await (async () => {
      for (const deadline = Date.now() + 20_000; ; await sleep(200)) {
        try {
          return await dbg('status');
        } catch (err) {
          if (Date.now() > deadline) throw err;
        }
      }
    })();
    expect(out).to.match(/^Cilium:\s+Ok\s+cilium-ts /m);
    expect(out).to.match(/^KVStore:\s+Disabled/m);
    expect(out).to.match(/^Kubernetes:\s+Ok\s+1\.36 \(v1\.36\.3\) \[linux\/amd64\]$/m);
    expect(out).to.match(/^Controller Status:\s+9\/9 healthy$/m);
    expect(out).to.match(/^IPAM:\s+IPv4: 3\/254 allocated from 10\.219\.8\.0\/24,/m);
    expect(out).to.match(/^NodeMonitor:\s+Listening for events on \d+ CPUs with 1024x4096 of shared memory/m);
    const json = JSON.parse(await dbg('status', '-o', 'json')) as { 'identity-range': Record<string, number>; ipam: { allocations: Record<string, string> } };
    expect(json['identity-range']).to.deep.equal({ 'min-identity': 256, 'max-identity': 65535 });
    expect(json.ipam.allocations[ip]).to.equal(`${agent.namespace}/web`);
    // --verbose walks every sub-status, KubeProxyReplacement's features included.
    expect(await dbg('status', '--verbose')).to.match(/^KubeProxyReplacement:\s+False/m);
  });

  it('endpoint list: our endpoint with its identity, labels, address, enforcement and state', async () => {
    const out = await dbg('endpoint', 'list');
    const lines = out.split('\n');
    expect(lines[0]).to.match(/^ENDPOINT\s+POLICY \(ingress\)\s+POLICY \(egress\)\s+IDENTITY\s+LABELS \(source:key\[=value\]\)\s+IPv6\s+IPv4\s+STATUS/);
    const row = lines.find((l) => l.startsWith(`${ep.id} `));
    expect(row, out).to.match(new RegExp(`^${ep.id}\\s+Enabled\\s+Disabled\\s+${ep.status.identity.id}\\s+k8s:app=web\\s+${ip.replace(/\./g, '\\.')}\\s+ready`));
    for (const l of ep.status.identity.labels) expect(out).to.include(l);
    const json = JSON.parse(await dbg('endpoint', 'list', '-o', 'json')) as Endpoint[];
    expect(json.map((e) => e.id)).to.deep.equal([ep.id]);
  });

  it('endpoint get: by id, CiliumEndpoint name and address', async () => {
    for (const id of [String(ep.id), `cep-name:${agent.namespace}/web`, `ipv4:${ip}`]) {
      const got = JSON.parse(await dbg('endpoint', 'get', id)) as Endpoint[];
      expect(got.map((e) => e.id), id).to.deep.equal([ep.id]);
      expect(got[0]?.status.networking.addressing[0]?.ipv4).to.equal(ip);
    }
  });

  it('identity list and get: reserved identities and the endpoint\'s, with labels', async () => {
    const out = await dbg('identity', 'list');
    expect(out).to.match(/^ID\s+LABELS/);
    expect(out).to.match(/^1\s+reserved:host/m);
    expect(out).to.match(new RegExp(`^${ep.status.identity.id}\\s+k8s:app=web`, 'm'));
    const got = JSON.parse(await dbg('identity', 'get', String(ep.status.identity.id), '-o', 'json')) as { id: number; labels: string[] } | { id: number; labels: string[] }[];
    const one = Array.isArray(got) ? got[0] : got;
    expect(one?.id).to.equal(ep.status.identity.id);
    expect(one?.labels).to.include('k8s:tier=front');
  });

  it('policy get: the rules with their labels and the revision', async () => {
    const out = await dbg('policy', 'get');
    expect(out).to.include('"io.cilium.k8s.policy.name"').and.include('"web-ingress"');
    expect(out).to.match(/^Revision: \d+$/m);
    const selectors = await dbg('policy', 'selectors');
    expect(selectors).to.include(String(ep.status.identity.id));
  });

  it('ip list: the endpoint\'s address with its identity labels and source', async () => {
    const out = await dbg('ip', 'list');
    expect(out).to.match(/^IP\s+IDENTITY\s+SOURCE/);
    expect(out).to.match(new RegExp(`^${ip.replace(/\./g, '\\.')}/32\\s+k8s:app=web\\s+local`, 'm'));
    const json = JSON.parse(await dbg('ip', 'list', '-o', 'json')) as { cidr: string; identity: number }[];
    expect(json.find((e) => e.cidr === `${ip}/32`)?.identity).to.equal(ep.status.identity.id);
  });

  it('map list and map get: our pinned maps with their entries', async () => {
    const list = await dbg('map', 'list');
    expect(list).to.include('cilium_lxc');
    const lxc = await dbg('map', 'get', 'cilium_lxc');
    expect(lxc).to.include(ip).and.include(`id=${ep.id} sec_id=${ep.status.identity.id}`);
  });

  it('config and endpoint health decode', async () => {
    const cfg = await dbg('config', '-a');
    expect(cfg.length).to.be.greaterThan(0);
    const health = await dbg('endpoint', 'health', String(ep.id));
    expect(health).to.match(/Overall Health:\s+OK/);
  });
});
