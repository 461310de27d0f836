// Hubble's observer on a real agent: two nodes of the e2e harness (real apiserver, kernel, netns
// pods), the observer built from node B's AgentDaemon parts as the daemon wires it, real TCP from
// a client pod on node A to a server pod on node B under CiliumNetworkPolicies. GetFlows returns
// the flows enriched (pods, identities, the policy that decided), and the upstream hubble CLI
// (v1.20.2) reads them from our socket: `observe -o json` and `status`.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { type Client, credentials, type ServiceError, status } from '@grpc/grpc-js';
import type { HubbleObserver } from '../../../controllers/agent/hubble/observer.js';
import type { Flow } from '../../../controllers/hubble/flow-types.js';
import { hubbleProtos } from '../../../controllers/hubble/protos.js';
import { defaultBinDir } from '../../../hack/controlplane/paths.js';
import { type E2ECluster, NODE_B, type PodHandle } from '../../e2e/harness.js';
import { runWithExitCode } from '../../envtest/command.js';
import { pollUntil } from '../../envtest/poll.js';
import { AgentObserver, CONVERGE_MS, SERVER_PORT as PORT } from './agent-observer.js';

const HUBBLE = path.join(defaultBinDir(), 'hubble-upstream');
const DENIED_PORT = 9090;

function getFlows(client: Client, req: object): Promise<{ flow?: Flow }[]> {
  return new Promise((resolve, reject) => {
    const call = (client as unknown as Record<string, (r: object) => NodeJS.EventEmitter>).GetFlows!(req);
    const out: { flow?: Flow }[] = [];
    call.on('data', (m: { flow?: Flow }) => out.push(m));
    call.on('end', () => resolve(out));
    call.on('error', (err: ServiceError) => reject(err));
  });
}

describe('hubble observer on a real agent, read by the upstream hubble CLI', function () {
  this.timeout(120_000);
  const fixture = new AgentObserver();
  let cluster: E2ECluster;
  let observer: HubbleObserver;
  let client: Client;
  let clientPod: PodHandle;
  let serverPod: PodHandle;

  before(async function () {
    this.timeout(90_000);
    if (!existsSync(HUBBLE)) throw new Error(`${HUBBLE} is missing: build it with \`bash hack/install-tools.sh all\``);
    await fixture.start(['--enable-hubble=true', '--hubble-listen-address=127.0.0.1:0', '--hubble-metrics-server='], 'hubble-it');
    cluster = fixture.cluster!;
    ({ observer, clientPod, serverPod } = fixture);
    client = new (hubbleProtos().ObserverClient)(`unix://${fixture.settings.socketPath}`, credentials.createInsecure());
  });

  after(async function () {
    this.timeout(60_000);
    client?.close();
    await fixture.stop();
  });

  const flows = (pred: (f: Flow) => boolean) => {
    const out: Flow[] = [];
    for (let seq = observer.ring.oldest; seq < observer.ring.head; seq++) {
      const f = observer.ring.at(seq)?.flow;
      if (f && pred(f)) out.push(f);
    }
    return out;
  };
  const toServer = (port: number) => (f: Flow) => f.IP.source === clientPod.ip && f.IP.destination === serverPod.ip && f.l4?.TCP?.destination_port === port;
  const connect = (port: number, wait: number) => fixture.client.canConnect(serverPod.ip, port, wait);

  it('real traffic and denying policies make enriched flows; the deciding policy is named', async () => {
    const ns = cluster.namespace;
    expect(await connect(PORT, 5000), 'TCP without policy').to.equal(true);
    await pollUntil('the trace of the allowed connection', () => flows((f) => toServer(PORT)(f) && f.trace_reason === 'NEW').length > 0, CONVERGE_MS);
    const [trace] = flows((f) => toServer(PORT)(f) && f.trace_reason === 'NEW');
    expect(trace).to.deep.include({ verdict: 'FORWARDED', trace_observation_point: 'TO_ENDPOINT', traffic_direction: 'INGRESS', is_reply: { value: false }, node_name: NODE_B });
    expect(trace!.interface).to.deep.equal({ index: serverPod.endpoint.ifindex, name: serverPod.endpoint.ifname });

    await cluster.kubectlApply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'server-from-other', namespace: ns },
      spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'other' } }] }] },
    });
    await cluster.kubectlApply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'deny-client-9090', namespace: ns },
      spec: {
        endpointSelector: { matchLabels: { app: 'server' } },
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: String(DENIED_PORT), protocol: 'TCP' }] }] }],
      },
    });
    const daemon = cluster.agent(NODE_B);
    await pollUntil('both policies enforced on the server', () => (daemon.datapath.endpointPolicy(serverPod.endpoint.id).realized?.entries.some((e) => e.deny) ?? false), CONVERGE_MS);
    expect(await connect(PORT, 1500), 'TCP 8080 under from-other').to.equal(false);
    expect(await connect(DENIED_PORT, 1500), 'TCP 9090 under the deny').to.equal(false);
    await pollUntil('both drops observed', () => flows((f) => f.verdict === 'DROPPED' && (toServer(PORT)(f) || toServer(DENIED_PORT)(f))).length >= 2, CONVERGE_MS);

    // Our server answers with filters, as the CLI's --verdict/--to-pod/--drop-reason-desc send them.
    const drops = await getFlows(client, { whitelist: [{ verdict: ['DROPPED'], destination_pod: [`${ns}/server`], event_type: [{ type: 1 }] }] });
    const denied = drops.map((r) => r.flow!).find(toServer(PORT));
    expect(denied, 'the 133 drop of the TCP SYN to 8080').to.not.equal(undefined);
    expect(denied).to.deep.include({ verdict: 'DROPPED', drop_reason: 133, drop_reason_desc: 'POLICY_DENIED', traffic_direction: 'INGRESS', node_name: NODE_B });
    expect(denied!.source).to.deep.include({ pod_name: 'client', namespace: ns, identity: clientPod.endpoint.identity, ID: 0 });
    expect(denied!.source.labels).to.include('k8s:app=client');
    expect(denied!.destination).to.deep.include({ pod_name: 'server', namespace: ns, identity: serverPod.endpoint.identity, ID: serverPod.endpoint.id, cluster_name: 'default' });
    expect(denied!.l4?.TCP?.flags).to.deep.include({ SYN: true, ACK: false, RST: false });
    const byDeny = drops.map((r) => r.flow!).find(toServer(DENIED_PORT));
    expect(byDeny).to.deep.include({ drop_reason_desc: 'POLICY_DENY' });
    expect(byDeny!.ingress_denied_by).to.have.length(1);
    expect(byDeny!.ingress_denied_by![0]).to.deep.include({ kind: 'CiliumNetworkPolicy', namespace: ns, name: 'deny-client-9090' });

    // An allow for the client on 8080: its policy verdict names the allowing policy.
    await cluster.kubectlApply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'allow-client-8080', namespace: ns },
      spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }] }] },
    });
    const deadline = Date.now() + CONVERGE_MS;
    while (!(await connect(PORT, 1500))) if (Date.now() > deadline) throw new Error('TCP 8080 never allowed by allow-client-8080');
    // The verdicts of before any policy (no enforcement) name none; the last one names the allow.
    const verdicts = () => flows((f) => toServer(PORT)(f) && f.event_type.type === 5 && f.verdict === 'FORWARDED');
    await pollUntil('the allowing policy verdict', () => verdicts().length > 1, CONVERGE_MS);
    expect(verdicts()[0]!.ingress_allowed_by, 'the verdict without policy').to.equal(undefined);
    const allowed = verdicts().at(-1)!;
    expect(allowed).to.deep.include({ policy_match_type: 2, traffic_direction: 'INGRESS' });
    expect(allowed.ingress_allowed_by?.map((p) => p.name), JSON.stringify(verdicts())).to.deep.equal(['allow-client-8080']);
  });

  it('the upstream hubble CLI reads our flows (observe -o json, filters, status)', async () => {
    const server = ['--server', `unix://${observer.opts.settings.socketPath}`];
    const obs = await runWithExitCode(HUBBLE, ['observe', ...server, '-o', 'json', '--last', '1000', '--verdict', 'DROPPED', '--to-pod', `${cluster.namespace}/server`]);
    expect(obs.code, obs.stderr).to.equal(0);
    const lines = obs.stdout.trim().split('\n').map((l) => JSON.parse(l) as { flow: Record<string, unknown> & { IP: Record<string, string>; source: Record<string, unknown>; destination: Record<string, unknown> } });
    expect(lines.length).to.be.at.least(2);
    for (const l of lines) expect(l.flow.verdict).to.equal('DROPPED');
    const policyDenied = lines.find((l) => l.flow.drop_reason_desc === 'POLICY_DENIED' && l.flow.IP.source === clientPod.ip);
    expect(policyDenied, obs.stdout).to.not.equal(undefined);
    expect(policyDenied!.flow.IP).to.deep.include({ source: clientPod.ip, destination: serverPod.ip, ipVersion: 'IPv4' });
    expect(policyDenied!.flow.source).to.deep.include({ pod_name: 'client', namespace: cluster.namespace });
    expect(policyDenied!.flow.destination).to.deep.include({ pod_name: 'server', ID: serverPod.endpoint.id });

    const deny = await runWithExitCode(HUBBLE, ['observe', ...server, '-o', 'json', '--last', '10', '--drop-reason-desc', 'POLICY_DENY', '--port', String(DENIED_PORT)]);
    expect(deny.code, deny.stderr).to.equal(0);
    const denyFlows = deny.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { flow: { ingress_denied_by: { name: string }[] } }).flow);
    expect(denyFlows.length).to.be.at.least(1);
    expect(denyFlows.every((f) => f.ingress_denied_by[0]?.name === 'deny-client-9090')).to.equal(true);

    const compact = await runWithExitCode(HUBBLE, ['observe', ...server, '--last', '3', '--from-pod', `${cluster.namespace}/client`, '--verdict', 'DROPPED']);
    expect(compact.code, compact.stderr).to.equal(0);
    expect(compact.stdout).to.contain(`${cluster.namespace}/client`).and.to.contain('DROPPED');

    const st = await runWithExitCode(HUBBLE, ['status', ...server]);
    expect(st.code, st.stderr).to.equal(0);
    expect(st.stdout).to.match(/Healthcheck \(via unix:\/\/.*\): Ok/);
    expect(st.stdout).to.match(new RegExp(`Current/Max Flows: ${observer.ring.length.toLocaleString('en-US')}/4,095`));

    const nodes = await runWithExitCode(HUBBLE, ['list', 'nodes', ...server]);
    expect(nodes.code, nodes.stderr).to.equal(0);
    expect(nodes.stdout).to.match(new RegExp(`^${NODE_B}\\s+Connected\\s`, 'm'));
  });

  it('a bad filter is refused with the reason, as upstream refuses it', async () => {
    let err: ServiceError | undefined;
    await getFlows(client, { whitelist: [{ source_port: ['http'] }] }).catch((e: ServiceError) => (err = e));
    expect(err?.code).to.equal(status.INVALID_ARGUMENT);
    const cli = await runWithExitCode(HUBBLE, ['observe', '--server', `unix://${observer.opts.settings.socketPath}`, '--allowlist', '{"source_port":["http"]}']);
    expect(cli.code).to.not.equal(0);
    expect(cli.stderr).to.contain('source_port: "http" is not a port');
  });
});
