import { expect } from 'chai';
import type { TraceEvent } from '../../../datapath/types.js';
import type { Flow } from '../../hubble/flow-types.js';
import { newLogger } from '../../runtime/log.js';
import { contextLabelValues, HubbleMetrics } from './metrics.js';
import { checkMetricsOption, parseMetricsOption, splitMetrics } from './metrics-options.js';
import { HubbleObserver } from './observer.js';
import { CLIENT_IP, policyDrop, SERVER_IP, testSettings, testSources, traceNew } from './testing.js';

const T0 = 1_700_000_000_000;

function flows(): { drop: Flow; trace: Flow; verdict: Flow; icmp: Flow; reply: Flow } {
  const o = new HubbleObserver({ settings: testSettings(), sources: testSources(), events: async function* () {}, nodeAddress: '192.0.2.1', version: 'test', logger: newLogger('hubble-test', 'error') });
  return {
    drop: o.ingest(policyDrop(9090), T0),
    trace: o.ingest(traceNew(8080), T0 + 1),
    verdict: o.ingest({ type: 'policy-verdict', endpointId: 12, srcIdentity: 5000, dstIdentity: 4242, direction: 'ingress', verdict: 0, matchType: 2, cookie: 0, packet: { srcIp: CLIENT_IP, dstIp: SERVER_IP, protocol: 6, srcPort: 40000, dstPort: 8080, flags: 0x02 } }, T0 + 2),
    icmp: o.ingest({ ...traceNew(), packet: { srcIp: CLIENT_IP, dstIp: SERVER_IP, protocol: 1, srcPort: 0, dstPort: 0, flags: 0x0300 | 3 } }, T0 + 3),
    reply: o.ingest({ ...(traceNew() as TraceEvent), ctState: 3, packet: { srcIp: SERVER_IP, dstIp: CLIENT_IP, protocol: 6, srcPort: 8080, dstPort: 40000, flags: 0x12 } }, T0 + 4),
  };
}

async function samples(m: HubbleMetrics, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = m.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`${name} is not registered`);
  return (await metric.get()).values.map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));
}

describe('hubble metrics', () => {
  it('reads hubble-metrics as upstream: spaces or commas, options after a colon, commas inside labelsContext', () => {
    expect(splitMetrics('dns,drop:sourceContext=pod;destinationContext=pod,tcp,flow,port-distribution,icmp,policy')).to.deep.equal([
      'dns',
      'drop:sourceContext=pod;destinationContext=pod',
      'tcp',
      'flow',
      'port-distribution',
      'icmp',
      'policy',
    ]);
    expect(splitMetrics('drop:labelsContext=source_pod,destination_pod flow')).to.deep.equal(['drop:labelsContext=source_pod,destination_pod', 'flow']);
    const [drop] = parseMetricsOption('drop:sourceContext=pod|ip;destinationIngressContext=namespace;labelsContext=traffic_direction,source_app');
    expect(drop!.context).to.deep.include({ source: ['pod', 'ip'], destination: [], destinationIngress: ['namespace'], labels: ['source_app', 'traffic_direction'] });
    expect(checkMetricsOption('')).to.equal(undefined);
    expect(checkMetricsOption('drops')).to.match(/drops: unknown metric/);
    expect(checkMetricsOption('drop:sourceContext=podname')).to.match(/drop: sourcecontext: unknown context "podname"/);
    expect(checkMetricsOption('drop:labelsContext=source_node')).to.match(/invalid labelsContext value: source_node/);
    expect(checkMetricsOption('drop drop')).to.match(/given twice/);
  });

  it('context labels: the first non-empty identifier, direction-specific ones for their direction', () => {
    const { drop, trace } = flows();
    const [cfg] = parseMetricsOption('flow:sourceContext=dns|pod;destinationContext=pod-short;destinationEgressContext=ip;labelsContext=destination_app,traffic_direction');
    expect(contextLabelValues(cfg!.context, drop)).to.deep.equal({ destination_app: 'cart', traffic_direction: 'ingress', source: 'shop/client-1', destination: 'shop/cart' });
    const egress = { ...trace, traffic_direction: 'EGRESS' } as Flow;
    expect(contextLabelValues(cfg!.context, egress).destination).to.equal(SERVER_IP);
    const [reserved] = parseMetricsOption('drop:sourceContext=reserved-identity|workload-name;destinationContext=workload-name');
    expect(contextLabelValues(reserved!.context, drop)).to.deep.equal({ source: '', destination: 'cart' });
  });

  it('counts flows under upstream`s names and labels', async () => {
    const m = new HubbleMetrics('drop:sourceContext=pod;destinationContext=pod,tcp,flow,port-distribution,icmp,policy,flows-to-world,dns,httpV2');
    expect(m.skipped).to.deep.equal(['dns', 'httpV2']);
    const f = flows();
    for (const flow of Object.values(f)) m.processFlow(flow);
    m.lost('OBSERVER_EVENTS_QUEUE', 3);

    expect(await samples(m, 'hubble_drop_total')).to.deep.equal([{ labels: { source: 'shop/client-1', destination: 'shop/cart-5c4b9-xk2p', reason: 'POLICY_DENIED', protocol: 'TCP' }, value: 1 }]);
    expect(await samples(m, 'hubble_flows_processed_total')).to.have.deep.members([
      { labels: { protocol: 'TCP', type: 'Drop', subtype: '', verdict: 'DROPPED' }, value: 1 },
      { labels: { protocol: 'TCP', type: 'Trace', subtype: 'to-endpoint', verdict: 'FORWARDED' }, value: 2 },
      { labels: { protocol: 'TCP', type: 'PolicyVerdict', subtype: '', verdict: 'FORWARDED' }, value: 1 },
      { labels: { protocol: 'ICMPv4', type: 'Trace', subtype: 'to-endpoint', verdict: 'FORWARDED' }, value: 1 },
    ]);
    // SYN of the trace and of the verdict, SYN-ACK of the reply; the drop is not forwarded.
    expect(await samples(m, 'hubble_tcp_flags_total')).to.have.deep.members([
      { labels: { flag: 'SYN', family: 'IPv4' }, value: 2 },
      { labels: { flag: 'SYN-ACK', family: 'IPv4' }, value: 1 },
    ]);
    // Requests only: the reply's ephemeral port is not a service port.
    expect(await samples(m, 'hubble_port_distribution_total')).to.have.deep.members([
      { labels: { protocol: 'TCP', port: '8080' }, value: 2 },
      { labels: { protocol: 'ICMPv4', port: '0' }, value: 1 },
    ]);
    expect(await samples(m, 'hubble_icmp_total')).to.deep.equal([{ labels: { family: 'IPv4', type: 'DestinationUnreachable(Port)' }, value: 1 }]);
    expect(await samples(m, 'hubble_policy_verdicts_total')).to.deep.equal([{ labels: { direction: 'ingress', match: 'l3-l4', action: 'forwarded' }, value: 1 }]);
    expect(await samples(m, 'hubble_flows_to_world_total')).to.deep.equal([]);
    expect(await samples(m, 'hubble_lost_events_total')).to.deep.equal([{ labels: { source: 'OBSERVER_EVENTS_QUEUE' }, value: 3 }]);
    expect(await m.registry.metrics()).to.match(/^hubble_history_lost_flows_total 0$/m);
  });

  it('updates the prom-client counter once per series and scrape, however many flows it counted', async () => {
    const m = new HubbleMetrics('flow:sourceContext=pod,tcp');
    const { trace, reply } = flows();
    const counter = m.registry.getSingleMetric('hubble_flows_processed_total') as unknown as { inc: (...args: unknown[]) => void };
    const inc = counter.inc.bind(counter);
    let updates = 0;
    counter.inc = (...args: unknown[]) => {
      updates++;
      inc(...args);
    };
    for (let i = 0; i < 1000; i++) m.processFlow(i % 4 === 0 ? reply : trace);
    const trace1 = { protocol: 'TCP', type: 'Trace', subtype: 'to-endpoint', verdict: 'FORWARDED' };
    expect(await samples(m, 'hubble_flows_processed_total')).to.deep.equal([
      { labels: { ...trace1, source: 'shop/cart-5c4b9-xk2p' }, value: 250 },
      { labels: { ...trace1, source: 'shop/client-1' }, value: 750 },
    ]);
    expect(updates).to.equal(2);
    for (let i = 0; i < 5; i++) m.processFlow(trace);
    // Counts keep accumulating across scrapes; the series order and label order stay the exported ones.
    const text = await m.registry.metrics();
    expect(text).to.include('hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED",source="shop/client-1"} 755');
    expect(text).to.match(/^hubble_tcp_flags_total\{family="IPv4",flag="SYN-ACK"\} 250\nhubble_tcp_flags_total\{family="IPv4",flag="SYN"\} 755$/m);
    expect(updates).to.equal(3);
  });

  it('flows to world: policy drops and requests only, with the port when asked', async () => {
    const m = new HubbleMetrics('flows-to-world:port;syn-only');
    const { trace, reply, drop } = flows();
    const world = (f: Flow): Flow => ({ ...f, destination: { ...f.destination, labels: ['reserved:world'] } });
    for (const f of [trace, reply, drop, { ...drop, drop_reason_desc: 'CT_MAP_INSERTION_FAILED' } as Flow].map(world)) m.processFlow(f);
    expect(await samples(m, 'hubble_flows_to_world_total')).to.have.deep.members([
      { labels: { protocol: 'TCP', verdict: 'FORWARDED', port: '8080' }, value: 1 },
      { labels: { protocol: 'TCP', verdict: 'DROPPED', port: '9090' }, value: 1 },
    ]);
  });
});
