// Smoke tests of the benchmark's parts (the benchmark itself is `npm run bench:datapath`).
import { expect } from 'chai';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { BpfObject } from '../../datapath/libbpf/object.js';
import type { BpfProgram } from '../../datapath/libbpf/prog.js';
import { PodAgent } from '../datapath/pod-agent.js';
import { ChildSet } from '../datapath/children.js';
import { runCleanup } from '../datapath/cleanup-steps.js';
import { measureIperf } from './iperf.js';
import { BENCH_CHAIN, FIXED_RULES, IptablesChain } from './iptables-chain.js';
import { median, nsPerPacket, nsPerSingleRun } from './per-packet.js';
import { TCP_SYN, tcpPacket } from '../../datapath/linux/testing/packets.js';
import { runCommand } from '../../datapath/netns/run.js';
import { NOOP_OBJECT_PATH } from '../../datapath/linux/paths.js';

async function chainExists(): Promise<boolean> {
  const { stdout } = await runCommand('list chains', 'iptables', ['-w', '-S']);
  return stdout.split('\n').includes(`-N ${BENCH_CHAIN}`);
}

describe('bench pieces', function () {
  this.timeout(60_000);

  describe('with two pods', () => {
    let net: PodNetwork | undefined;
    const agents: PodAgent[] = [];
    const children = new ChildSet();
    before(async () => {
      await PodNetwork.sweep('ctbp');
      await IptablesChain.remove();
      net = await PodNetwork.create({ prefix: 'ctbp', pods: ['client', 'server'] });
      agents.push(await PodAgent.start(net, 'client', children), await PodAgent.start(net, 'server', children));
      await agents[1]!.listen(5201);
    });
    after(() =>
      runCleanup('bench pieces teardown', [
        ['remove iptables chain', () => IptablesChain.remove()],
        ['stop pod agents', () => Promise.all(agents.map((a) => a.stop()))],
        ['kill helper processes', () => children.killAll()],
        ['destroy pod network', () => net?.destroy()],
      ]),
    );

    it('iperf3 reports a positive TCP rate between the pods', async () => {
      const run = await measureIperf(net!, 'client', 'server', 1, 5301);
      expect(run.gbps).to.be.greaterThan(0);
    });

    it('the iptables chain sits in the forward path: established packets stop at its first rule, its accept lets the flow through, its drop stops others', async () => {
      const n = net!;
      const server = n.pod('server').ip;
      const subnet = `${server.split('.').slice(0, 3).join('.')}.0/24`;
      const chain = await IptablesChain.create(200, { client: n.pod('client').ip, server, port: 5201, subnet });
      expect(await chain.listedRules()).to.equal(200 + FIXED_RULES);
      const { stdout } = await runCommand('list chain', 'iptables', ['-w', '-S', BENCH_CHAIN]);
      expect(stdout.split('\n')[1]).to.match(/^-A CILIUM-TS-BENCH -m conntrack --ctstate (RELATED,ESTABLISHED|ESTABLISHED,RELATED) -j ACCEPT$/);
      await chain.enable();
      expect(await agents[0]!.canConnect(server, 5201)).to.equal(true);
      const counts = await runCommand('chain counters', 'iptables', ['-w', '-L', BENCH_CHAIN, '-v', '-x', '-n']);
      const establishedPackets = Number(counts.stdout.split('\n')[2]?.trim().split(/\s+/)[0]);
      expect(establishedPackets, 'packets accepted by the conntrack rule (handshake ACK and the server replies)').to.be.greaterThan(0);
      await agents[1]!.listen(5202);
      expect(await agents[0]!.canConnect(server, 5202, 800)).to.equal(false);
      await chain.disable();
      expect(await agents[0]!.canConnect(server, 5202)).to.equal(true);
      await IptablesChain.remove();
      expect(await chainExists()).to.equal(false);
    });
  });

  describe('per-packet test runs', () => {
    let obj: BpfObject | undefined;
    let prog: BpfProgram | undefined;
    before(() => {
      obj = BpfObject.open(NOOP_OBJECT_PATH);
      obj.load();
      prog = obj.program('cil_noop');
    });
    after(() => {
      prog?.close();
      obj?.close();
    });

    it('times the no-op program per packet, repeated and in single runs, calling the batch hook between batches', () => {
      const frame = (sport: number): Buffer => tcpPacket({ src: '10.9.0.1', dst: '10.9.0.2', sport, dport: 80, flags: TCP_SYN });
      const run = (data: Buffer, repeat: number) => prog!.testRun({ data, repeat });
      const rounds: number[] = [];
      const repeated = nsPerPacket('noop', run, frame(40000), 10_000, 3, (runs) => rounds.push(runs));
      expect(repeated.retval).to.equal(0);
      expect(repeated.ns).to.be.greaterThan(0);
      expect(rounds).to.deep.equal([10_000, 10_000, 10_000]);
      const batches: number[] = [];
      const single = nsPerSingleRun('noop', run, (i) => frame(1024 + i), 50, 20, (runs) => batches.push(runs));
      expect(single.retval).to.equal(0);
      expect(single.ns).to.be.greaterThan(0);
      expect(batches).to.deep.equal([20, 20, 10]);
    });

    it('refuses a measurement whose runs did not all take the same verdict', () => {
      let calls = 0;
      const flaky = () => ({ retval: calls++ === 3 ? 2 : 0, durationNs: 10 });
      expect(() => nsPerSingleRun('flaky', flaky, () => Buffer.alloc(0), 10)).to.throw(/per-packet flaky: run 3 returned 2, run 0 returned 0/);
    });

    it('median picks the middle sample', () => {
      expect(median([5, 1, 3])).to.equal(3);
      expect(median([4, 1, 3, 2])).to.equal(2.5);
      expect(() => median([])).to.throw(/no samples/);
    });
  });
});
