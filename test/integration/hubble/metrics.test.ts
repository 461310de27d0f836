// Hubble metrics scraped by a real Prometheus: node B's observer of the e2e harness (real
// apiserver, kernel, netns pods) serves hubble_* on hubble-metrics-server with pod contexts; TCP
// from a client pod on node A to a server pod on node B is dropped by a CiliumNetworkPolicy in the
// real datapath, and a PromQL query over Prometheus' HTTP API returns exactly those drops by reason.
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'chai';
import type { HubbleObserver } from '../../../controllers/agent/hubble/observer.js';
import type { Flow } from '../../../controllers/hubble/flow-types.js';
import { freePorts } from '../../../hack/controlplane/ports.js';
import { AgentObserver, CONVERGE_MS, SERVER_PORT as PORT } from './agent-observer.js';
import { Prometheus, type PromSample } from './prometheus.js';

describe('hubble metrics scraped by a real Prometheus', function () {
  this.timeout(120_000);
  const fixture = new AgentObserver();
  let observer: HubbleObserver;
  let prometheus: Prometheus | undefined;

  before(async function () {
    this.timeout(90_000);
    const [metricsPort] = await freePorts(1);
    const args = ['--enable-hubble=true', '--hubble-listen-address=', `--hubble-metrics-server=127.0.0.1:${metricsPort}`, '--hubble-metrics=drop:sourceContext=pod;destinationContext=pod,flow,policy'];
    await fixture.start(args, 'hubble-metrics-it');
    observer = fixture.observer;
    prometheus = await Prometheus.start([`127.0.0.1:${metricsPort}`], fixture.children);
  });

  after(async function () {
    this.timeout(60_000);
    await prometheus?.stop();
    await fixture.stop();
  });

  const drops = (): Flow[] => {
    const out: Flow[] = [];
    for (let seq = observer.ring.oldest; seq < observer.ring.head; seq++) {
      const f = observer.ring.at(seq)?.flow;
      if (f?.verdict === 'DROPPED' && f.source.pod_name === 'client' && f.destination.pod_name === 'server') out.push(f);
    }
    return out;
  };

  it('a PromQL query returns the drops by reason the test caused', async () => {
    const ns = fixture.cluster!.namespace;
    expect(await fixture.client.canConnect(fixture.serverPod.ip, PORT, 5000), 'TCP without policy').to.equal(true);
    const scraped = Date.now() + CONVERGE_MS;
    while ((await prometheus!.targetsUp()).length === 0 && Date.now() < scraped) await sleep(250);
    expect(await prometheus!.targetsUp(), 'the hubble metrics endpoint scraped').to.deep.equal([1]);
    await fixture.cluster!.kubectlApply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'server-from-other', namespace: ns },
      spec: { endpointSelector: { matchLabels: { app: 'server' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'other' } }] }] },
    });
    // Connections until the policy is enforced and the first is dropped.
    const deadline = Date.now() + CONVERGE_MS;
    while (drops().length === 0) {
      await fixture.client.canConnect(fixture.serverPod.ip, PORT, 1500);
      if (Date.now() > deadline) throw new Error('no drop of the client`s TCP observed');
    }
    // The client's SYN retransmissions end with its connect timeout; then the count holds still.
    await sleep(1000);
    const caused = drops();
    expect(caused.every((f) => f.drop_reason_desc === 'POLICY_DENIED')).to.equal(true);

    const promql = `sum by (reason) (hubble_drop_total{source="${ns}/client", destination="${ns}/server"})`;
    const until = Date.now() + CONVERGE_MS;
    let result: PromSample[] = await prometheus!.query(promql);
    while (result[0]?.value !== caused.length && Date.now() < until) {
      await sleep(250);
      result = await prometheus!.query(promql);
    }
    expect(result).to.deep.equal([{ metric: { reason: 'POLICY_DENIED' }, value: caused.length }]);

    // The same drops under flows_processed_total (drop events and denying policy verdicts), and the
    // policy verdicts of the allowed connection before the policy.
    const processed = await prometheus!.query('sum by (type) (hubble_flows_processed_total{verdict="DROPPED"})');
    const byType: Record<string, number> = Object.fromEntries(processed.map((s) => [s.metric.type ?? '', s.value]));
    expect((byType.Drop ?? 0) + (byType.PolicyVerdict ?? 0)).to.be.at.least(caused.length);
    expect(byType.Drop).to.be.at.least(caused.filter((f) => f.event_type.type === 1).length);
    const verdicts = await prometheus!.query('sum by (direction, action) (hubble_policy_verdicts_total)');
    expect(verdicts.map((s) => s.metric)).to.deep.include({ direction: 'ingress', action: 'forwarded' });
  });
});
