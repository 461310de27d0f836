// The agent REST API through its real unix socket, against a real AgentDaemon (test apiserver,
// real datapath): what the CNI plugin calls (config, IPAM, endpoint create/get/delete), what the
// CLI reads, and the refusals: bad input 400 naming the field, unknown ids and paths 404, wrong
// methods 405, conflicts 409, a failing handler 500 without harm to the agent.
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import { AgentApiError } from '../../../controllers/agent/api/client.js';
import { TCP_SYN, tcpPacket } from '../../../datapath/linux/testing/packets.js';
import type { DatapathEvent } from '../../../datapath/types.js';
import { rejection } from '../../support/rejection.js';
import { pollUntil } from '../../envtest/poll.js';
import { ApiTestAgent } from './api-fixture.js';

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A request as any HTTP client could send it, for bodies and methods the typed client never sends. */
function raw(socketPath: string, method: string, path: string, body?: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, agent: false, headers: body === undefined ? {} : { 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function apiError(p: Promise<unknown>): Promise<AgentApiError> {
  const err = await rejection(p);
  if (!(err instanceof AgentApiError)) throw err;
  return err;
}

interface EndpointModel {
  id: number;
  status: {
    state: string;
    identity: { id: number; labels: string[] };
    labels: { 'security-relevant': string[] };
    networking: { addressing: { ipv4: string }[]; 'interface-name': string };
    'external-identifiers': Record<string, string>;
    policy: { realized?: { 'policy-enabled': string } };
  };
}

interface IpamResponse {
  address: { ipv4: string; 'ipv4-expiration-uuid'?: string; 'ipv4-pool-name': string };
  'host-addressing': { ipv4: { ip: string; 'alloc-range': string; enabled: boolean } };
  ipv4: { ip: string; cidrs: string[]; gateway: string; 'expiration-uuid'?: string };
}

describe('agent REST API (real socket, real agent)', function () {
  this.timeout(120_000);
  let agent: ApiTestAgent;
  const containerId = randomBytes(16).toString('hex');
  let ep: EndpointModel;
  let allocated: IpamResponse;

  before(async () => {
    agent = await ApiTestAgent.start('ap', '10.219.7.0/24');
    await agent.createPod('web', { app: 'web' });
  });

  after(async () => {
    await agent?.cleanup();
  });

  it('serves on <state-dir>/cilium.sock with mode 0660', () => {
    const st = statSync(agent.socketPath);
    expect(st.isSocket()).to.equal(true);
    expect(st.mode & 0o777).to.equal(0o660);
  });

  it('GET /healthz answers a StatusResponse that says Ok once the agent is ready', async () => {
    type Status = { cilium: { state: string; msg: string }; 'identity-range': Record<string, number>; kvstore: { state: string }; hubble: { state: string }; ipam: { status: string }; kubernetes: { state: string; msg: string; 'k8s-api-versions': string[] } };
    let status = await agent.client.request<Status>('GET', '/healthz');
    for (const deadline = Date.now() + 20_000; status.cilium.state !== 'Ok' && Date.now() < deadline; await sleep(50)) status = await agent.client.request<Status>('GET', '/healthz');
    expect(status.cilium.state, JSON.stringify(status)).to.equal('Ok');
    expect(status['identity-range']).to.deep.equal({ 'min-identity': 256, 'max-identity': 65535 });
    expect(status.kvstore.state).to.equal('Disabled');
    expect(status.hubble.state).to.equal('Disabled');
    expect(status.kubernetes, JSON.stringify(status.kubernetes)).to.deep.include({ state: 'Ok', msg: '1.36 (v1.36.3) [linux/amd64]' });
    expect(status.kubernetes['k8s-api-versions']).to.include('cilium/v2::CiliumNetworkPolicy');
    expect(status.ipam.status).to.match(/^IPv4: 2\/254 allocated from 10\.219\.7\.0\/24, $/);
    const brief = await agent.client.request<Record<string, unknown>>('GET', '/healthz', { headers: { brief: 'true' } });
    expect(Object.keys(brief)).to.deep.equal(['cilium']);
  });

  it('GET /config carries the node addressing, IPAM mode, datapath mode and MTUs', async () => {
    const cfg = await agent.client.request<{ spec: { 'policy-enforcement': string }; status: Record<string, unknown> }>('GET', '/config');
    expect(cfg.status.addressing).to.deep.equal({ ipv4: { enabled: true, ip: agent.addressing.routerIP, 'alloc-range': '10.219.7.0/24' }, ipv6: { enabled: false } });
    // Tunnel mode, upstream's default: routes leave room for the VXLAN header (this agent makes no node networking, so no device MTU is detected).
    expect(cfg.status).to.deep.include({ 'ipam-mode': 'cluster-pool', datapathMode: 'veth', deviceMTU: 1500, routeMTU: 1450, masquerade: true });
    expect(cfg.spec['policy-enforcement']).to.equal('default');
  });

  it('POST /ipam allocates from the podCIDR with an expiration the endpoint create cancels', async () => {
    allocated = await agent.client.request<IpamResponse>('POST', '/ipam', { query: { family: 'ipv4', owner: `${agent.namespace}/web` }, headers: { expiration: 'true' } });
    const ip = allocated.address.ipv4;
    expect(ip).to.match(/^10\.219\.7\.\d+$/);
    expect(allocated.ipv4).to.deep.include({ ip, cidrs: ['10.219.7.0/24'], gateway: agent.addressing.routerIP });
    expect(allocated['host-addressing'].ipv4).to.deep.equal({ enabled: true, ip: agent.addressing.routerIP, 'alloc-range': '10.219.7.0/24' });
    expect(allocated.address['ipv4-expiration-uuid']).to.be.a('string').and.equal(allocated.ipv4['expiration-uuid']);
    expect(agent.daemon.node.used()[ip]?.owner).to.equal(`${agent.namespace}/web`);
    expect(agent.daemon.api.expirations.has(ip)).to.equal(true);
  });

  it('PUT /endpoint/cni-attachment-id:... creates the endpoint (201, upstream Endpoint model) and stops the expiration', async () => {
    const body = agent.changeRequest('web', containerId, { ipv4: allocated.address.ipv4, 'ipv4-expiration-uuid': allocated.address['ipv4-expiration-uuid'] });
    ep = await agent.client.request<EndpointModel>('PUT', `/endpoint/cni-attachment-id:${containerId}:eth0`, { body });
    expect(ep.id).to.be.a('number').greaterThan(0);
    expect(ep.status.state).to.equal('ready');
    expect(ep.status.networking.addressing).to.deep.equal([{ ipv4: allocated.address.ipv4 }]);
    expect(ep.status.networking['interface-name']).to.equal(agent.link.ifname);
    expect(ep.status.identity.id).to.be.at.least(256);
    expect(ep.status.labels['security-relevant']).to.include('k8s:app=web').and.include(`k8s:io.kubernetes.pod.namespace=${agent.namespace}`);
    expect(ep.status['external-identifiers']).to.deep.include({ 'container-id': containerId, 'cni-attachment-id': `${containerId}:eth0`, 'pod-name': `${agent.namespace}/web` });
    expect(ep.status.policy.realized?.['policy-enabled']).to.equal('none');
    expect(agent.daemon.api.expirations.has(allocated.address.ipv4)).to.equal(false);
    expect(agent.daemon.endpoints.get(ep.id)?.ipv4).to.equal(allocated.address.ipv4);
  });

  it('GET /endpoint/{id} finds the endpoint by every id form upstream has', async () => {
    const ip = allocated.address.ipv4;
    for (const id of [`${ep.id}`, `cilium-local:${ep.id}`, `cni-attachment-id:${containerId}:eth0`, `container-id:${containerId}`, `cep-name:${agent.namespace}/web`, `pod-name:${agent.namespace}/web`, `pod-name:${agent.namespace}:web`, `ipv4:${ip}`]) {
      const got = await agent.client.request<EndpointModel>('GET', `/endpoint/${encodeURIComponent(id)}`);
      expect(got.id, id).to.equal(ep.id);
    }
    expect(await agent.client.request('GET', `/endpoint/${ep.id}/healthz`)).to.deep.equal({ bpf: 'OK', policy: 'OK', overallHealth: 'OK', connected: true });
    const labels = await agent.client.request<{ status: { 'security-relevant': string[] } }>('GET', `/endpoint/${ep.id}/labels`);
    expect(labels.status['security-relevant']).to.deep.equal(ep.status.labels['security-relevant']);
    expect(await agent.client.request('GET', `/endpoint/${ep.id}/log`)).to.deep.equal([]);
  });

  it('GET /endpoint lists endpoints, filtered by labels in the query or the body', async () => {
    const all = await agent.client.request<EndpointModel[]>('GET', '/endpoint');
    expect(all.map((e) => e.id)).to.deep.equal([ep.id]);
    expect((await agent.client.request<EndpointModel[]>('GET', '/endpoint', { query: { labels: 'k8s:app=web' } })).map((e) => e.id)).to.deep.equal([ep.id]);
    expect((await agent.client.request<EndpointModel[]>('GET', '/endpoint', { body: ['app=web'] })).map((e) => e.id)).to.deep.equal([ep.id]);
    const none = await apiError(agent.client.request('GET', '/endpoint', { query: { labels: 'k8s:app=other' } }));
    expect(none.status).to.equal(404);
  });

  it('a second create for the same attachment or address is 409; a bad request is 400 naming the field', async () => {
    const again = await apiError(agent.client.request('PUT', `/endpoint/cni-attachment-id:${containerId}:eth0`, { body: agent.changeRequest('web', containerId, { ipv4: allocated.address.ipv4 }) }));
    expect(again.status).to.equal(409);
    expect(String(again.body)).to.match(/already exists/);

    const cases: [string, unknown, RegExp][] = [
      ['cni-attachment-id:abc:eth0', { ...agent.changeRequest('web', 'abc'), state: undefined }, /^state: /],
      ['cni-attachment-id:abc:eth0', { ...agent.changeRequest('web', 'abc'), mac: 'zz:00' }, /^mac: /],
      ['cni-attachment-id:abc:eth0', { ...agent.changeRequest('web', 'abc'), 'interface-index': -1 }, /^interface-index: /],
      ['cni-attachment-id:abc:eth0', agent.changeRequest('web', 'other'), /^container-id: "other" differs from the path's endpoint id/],
      ['cni-attachment-id:abc:eth0', { ...agent.changeRequest('web', 'abc'), addressing: { ipv4: '10.219.7.300' } }, /^addressing\.ipv4: /],
      ['pod-name:a/b', agent.changeRequest('web', 'abc'), /^endpoint id: prefix pod-name cannot name a new endpoint/],
      ['12x', agent.changeRequest('web', 'abc'), /^endpoint id: "12x" is not a numeric endpoint id/],
      ['cni-attachment-id:abc:eth0', [1, 2], /^endpoint change request: the body must be a JSON object/],
    ];
    for (const [id, body, message] of cases) {
      const err = await apiError(agent.client.request('PUT', `/endpoint/${encodeURIComponent(id)}`, { body }));
      expect(err.status, `${id} ${JSON.stringify(body)}: ${String(err.body)}`).to.equal(400);
      expect(String(err.body), id).to.match(message);
    }
    const notJson = await raw(agent.socketPath, 'PUT', '/v1/endpoint/cni-attachment-id:abc:eth0', '{"state":');
    expect(notJson.status).to.equal(400);
    expect(JSON.parse(notJson.body)).to.match(/^endpoint change request: not valid JSON/);
    expect(agent.daemon.endpoints.list().map((e) => e.id)).to.deep.equal([ep.id]);
  });

  it('a create that fails in the agent is 500 with the cause, and the agent keeps serving', async () => {
    const err = await apiError(agent.client.request('PUT', '/endpoint/cni-attachment-id:ghost:eth0', { body: { ...agent.changeRequest('ghost', 'ghost'), addressing: { ipv4: '10.219.7.200' } } }));
    expect(err.status).to.equal(500);
    expect(String(err.body)).to.match(/pod .*\/ghost: not found/);
    expect((await agent.client.request<EndpointModel[]>('GET', '/endpoint')).length).to.equal(1);
  });

  it('ids, paths and methods that do not exist: 400, 404, 405', async () => {
    const cases: [string, string, number, RegExp][] = [
      ['GET', '/endpoint/abc', 400, /^endpoint id: "abc" is not a numeric endpoint id/],
      ['GET', '/endpoint/bogus:1', 400, /^endpoint id: unknown prefix "bogus"/],
      ['GET', '/endpoint/ipv4:1.2.3', 400, /is not an IPv4 address/],
      ['GET', '/endpoint/4000', 404, /^endpoint 4000 not found$/],
      ['GET', '/endpoint/container-id:nope/healthz', 404, /not found/],
      ['GET', '/identity/abc', 400, /^identity id: /],
      ['GET', '/identity/999999', 404, /^identity 999999 not found$/],
      ['GET', '/map/nosuchmap', 404, /^map nosuchmap not found$/],
      ['GET', '/map/..%2Fetc', 400, /^map name: /],
      ['GET', '/ip?cidr=10.0.0.0/33', 400, /^cidr: /],
      ['POST', '/ipam?family=ipv7', 400, /^family: "ipv7" is not ipv4 or ipv6$/],
      ['POST', '/ipam?pool=blue', 502, /pool "blue"/],
      ['POST', '/ipam/not-an-ip', 400, /^ip: "not-an-ip" is not an IP address$/],
      ['POST', '/ipam/fd00::1', 501, /IPv6/],
      ['POST', '/ipam/10.220.0.9', 400, /^ip: .*not a usable address/],
      ['DELETE', '/ipam/10.219.7.250', 404, /not allocated/],
      ['DELETE', '/endpoint', 400, /^endpoint batch delete request: /],
      ['GET', '/no/such/path', 404, /^path \/v1\/no\/such\/path not found$/],
      ['PATCH', '/endpoint/4001/labels', 404, /not found/],
      ['GET', '/prefilter', 501, /disabled/],
      ['GET', '/bgp/peers', 501, /disabled/],
    ];
    for (const [method, p, status, message] of cases) {
      const r = await raw(agent.socketPath, method, `/v1${p}`);
      expect(r.status, `${method} ${p}: ${r.body}`).to.equal(status);
      expect(r.headers['content-type'], `${method} ${p}`).to.equal('application/json');
      expect(JSON.parse(r.body), `${method} ${p}`).to.be.a('string').and.match(message);
    }
    const wrong = await raw(agent.socketPath, 'DELETE', '/v1/healthz');
    expect(wrong.status).to.equal(405);
    expect(wrong.headers.allow).to.equal('GET');
    expect(JSON.parse(wrong.body)).to.match(/^method DELETE not allowed on \/v1\/healthz/);
    expect((await raw(agent.socketPath, 'GET', '/healthz')).status, 'outside /v1').to.equal(404);
    // The endpoint's address is taken: allocating it again, or releasing it under the endpoint, is refused.
    expect((await raw(agent.socketPath, 'POST', `/v1/ipam/${allocated.address.ipv4}`)).status).to.equal(409);
    expect((await raw(agent.socketPath, 'DELETE', `/v1/ipam/${allocated.address.ipv4}`)).status).to.equal(409);
    const patch = await raw(agent.socketPath, 'PATCH', `/v1/endpoint/${ep.id}`, JSON.stringify({ state: 'ready', labels: ['k8s:app=other'] }));
    expect(patch.status).to.equal(501);
    expect(JSON.parse(patch.body)).to.match(/changing labels is not supported/);
    expect((await raw(agent.socketPath, 'PATCH', `/v1/endpoint/${ep.id}`, JSON.stringify({ state: 'ready' }))).status).to.equal(200);
  });

  it('an endpoint create naming another allocation\'s expiration uuid is refused, leaving the timer', async () => {
    const other = await agent.client.request<IpamResponse>('POST', '/ipam', { query: { owner: `${agent.namespace}/web2` }, headers: { expiration: 'true' } });
    const ip = other.address.ipv4;
    const err = await apiError(
      agent.client.request('PUT', '/endpoint/cni-attachment-id:c2:eth0', { body: agent.changeRequest('web', 'c2', { ipv4: ip, 'ipv4-expiration-uuid': 'not-the-uuid' }) }),
    );
    expect(err.status).to.equal(400);
    expect(String(err.body)).to.match(/^addressing\.ipv4-expiration-uuid: not-the-uuid is not the expiration of /);
    expect(agent.daemon.api.expirations.has(ip)).to.equal(true);
    await agent.client.request('DELETE', `/ipam/${ip}`);
    expect(agent.daemon.api.expirations.has(ip)).to.equal(false);
    expect(agent.daemon.node.used()[ip]).to.equal(undefined);
  });

  it('POST and DELETE /ipam/{ip} take and give back a given address', async () => {
    const ip = '10.219.7.77';
    await agent.client.request('POST', `/ipam/${ip}`, { query: { owner: 'ns/manual' } });
    expect(agent.daemon.node.used()[ip]?.owner).to.equal('ns/manual');
    await agent.client.request('DELETE', `/ipam/${ip}`);
    expect(agent.daemon.node.used()[ip]).to.equal(undefined);
    // By owner name, as upstream's release argument allows.
    await agent.client.request('POST', `/ipam/${ip}`, { query: { owner: 'ns/by-owner' } });
    await agent.client.request('DELETE', `/ipam/${encodeURIComponent('ns/by-owner')}`);
    expect(agent.daemon.node.used()[ip]).to.equal(undefined);
  });

  it('identities, policy, selectors, ipcache, maps and nodes carry the agent\'s data', async () => {
    await agent.applyPolicy('web-egress', { endpointSelector: { matchLabels: { app: 'web' } }, egress: [{ toEntities: ['world'], toPorts: [{ ports: [{ port: '53', protocol: 'UDP' }] }] }] }, ep.id, 'egress');

    const ids = await agent.client.request<{ id: number; labels: string[] }[]>('GET', '/identity');
    expect(ids.find((i) => i.id === 1)?.labels).to.deep.equal(['reserved:host']);
    expect(ids.find((i) => i.id === ep.status.identity.id)?.labels).to.deep.equal(ep.status.identity.labels);
    const one = await agent.client.request<{ id: number; labels: string[]; labelsSHA256: string }>('GET', `/identity/${ep.status.identity.id}`);
    expect(one.labels).to.include('k8s:app=web');
    expect(one.labelsSHA256).to.match(/^[0-9a-f]+c672b8d1ef56ed28ab87c3622c5114069bdd3ad7b8f9737498d0c01ecef0967a$/);
    const filtered = await agent.client.request<{ id: number }[]>('GET', '/identity', { body: ['k8s:app=web'] });
    expect(filtered.map((i) => i.id)).to.deep.equal([ep.status.identity.id]);
    expect((await agent.client.request<{ identity: { id: number }; refCount: number }[]>('GET', '/identity/endpoints')).map((e) => [e.identity.id, e.refCount])).to.deep.equal([[ep.status.identity.id, 1]]);

    const policy = await agent.client.request<{ revision: number; policy: string }>('GET', '/policy');
    expect(policy.revision).to.be.greaterThan(1);
    const rules = JSON.parse(policy.policy) as { endpointSelector: unknown; labels: { key: string; value: string; source: string }[] }[];
    expect(rules).to.have.length(1);
    expect(rules[0]?.endpointSelector).to.deep.equal({ matchLabels: { app: 'web' } });
    expect(rules[0]?.labels).to.deep.include({ key: 'io.cilium.k8s.policy.name', value: 'web-egress', source: 'k8s' });
    const selectors = await agent.client.request<{ selector: string; identities: number[]; users: number }[]>('GET', '/policy/selectors');
    expect(selectors.some((s) => s.identities.includes(ep.status.identity.id))).to.equal(true);

    const ipcache = await agent.client.request<{ cidr: string; identity: number; metadata: { source: string; namespace?: string; name?: string } }[]>('GET', '/ip');
    expect(ipcache.find((e) => e.cidr === `${allocated.address.ipv4}/32`)).to.deep.include({ identity: ep.status.identity.id, metadata: { source: 'local', namespace: agent.namespace, name: 'web' } });
    expect((await agent.client.request<unknown[]>('GET', '/ip', { query: { cidr: `${allocated.address.ipv4}/32` } })).length).to.equal(1);

    const maps = await agent.client.request<{ maps: { path: string; cache: { key: string; value: string }[] }[] }>('GET', '/map');
    const lxc = maps.maps.find((m) => m.path.endsWith('/cilium_lxc'));
    expect(lxc?.cache.find((e) => e.key === allocated.address.ipv4)?.value).to.match(new RegExp(`^id=${ep.id} sec_id=${ep.status.identity.id} `));
    const one2 = await agent.client.request<{ cache: { key: string }[] }>('GET', '/map/cilium_ipcache_v2');
    expect(one2.cache.map((e) => e.key)).to.include(`${allocated.address.ipv4}/32`);

    const nodes = await agent.client.request<{ self: string; 'nodes-added': { name: string; 'primary-address': { ipv4: { ip: string } } }[] }>('GET', '/cluster/nodes');
    expect(nodes.self).to.equal(`default/${agent.node}`);
    expect(nodes['nodes-added'].find((n) => n.name === `default/${agent.node}`)?.['primary-address'].ipv4.ip).to.equal('198.18.9.1');
    expect(await agent.client.request('GET', '/service')).to.deep.equal([]);
  });

  it('GET /monitor streams the datapath events as NDJSON to every client, and stops reading when they go', async () => {
    const first = new AbortController();
    const second = new AbortController();
    const take = async (signal: AbortController, into: DatapathEvent[]) => {
      for await (const e of await agent.client.stream<DatapathEvent & { time: string; cpu: number }>('/monitor', signal.signal)) {
        expect(e.time).to.match(/^\d{4}-\d\d-\d\dT/);
        into.push(e);
        if (into.some((x) => x.type === 'drop')) signal.abort();
      }
    };
    const a: DatapathEvent[] = [];
    const b: DatapathEvent[] = [];
    const streams = [take(first, a), take(second, b)];
    const giveUp = setTimeout(() => [first, second].forEach((c) => c.abort()), 15_000);
    await pollUntil('both monitor clients', () => agent.daemon.api.monitor.clientCount === 2, 10_000);
    // Egress to world is open only for UDP 53: this SYN is dropped by policy (133), with its event.
    const syn = tcpPacket({ src: allocated.address.ipv4, dst: '192.0.2.80', sport: 40000, dport: 80, flags: TCP_SYN });
    expect(agent.daemon.datapath.testRun('from-container', syn).retval).to.equal(2);
    await Promise.all(streams);
    clearTimeout(giveUp);
    for (const got of [a, b]) expect(got.find((e) => e.type === 'drop')).to.deep.include({ endpointId: ep.id, reason: 133 });
    await pollUntil('the monitor reader stopped', () => !agent.daemon.api.monitor.active, 10_000);
  });

  it('DELETE /endpoint {container-id} (CNI DEL) removes the endpoint and releases its address; again: 404', async () => {
    await agent.client.request('DELETE', '/endpoint', { body: { 'container-id': containerId } });
    expect(agent.daemon.endpoints.list()).to.deep.equal([]);
    expect(agent.daemon.node.used()[allocated.address.ipv4]).to.equal(undefined);
    const again = await apiError(agent.client.request('DELETE', '/endpoint', { body: { 'container-id': containerId } }));
    expect(again.status).to.equal(404);
    expect((await apiError(agent.client.request('DELETE', `/endpoint/${ep.id}`))).status).to.equal(404);
  });

  it('removes its socket when the agent stops', async () => {
    await agent.stop();
    expect(existsSync(agent.socketPath)).to.equal(false);
  });
});
