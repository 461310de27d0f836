// Smoke tests of the benchmark's parts (the benchmark itself is `npm run bench:datapath`).
import { expect } from 'chai';
import { PodNetwork } from '../../datapath/netns/pod-network.js';
import { BpfObject } from '../../datapath/libbpf/object.js';
import type { BpfProgram } from '../../datapath/libbpf/prog.js';
import { PodAgent } from '../datapath/pod-agent.js';
import { measureIperf } from './iperf.js';
import { BENCH_CHAIN, IptablesChain } from './iptables-chain.js';
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
    before(async () => {
      await PodNetwork.sweep('ctbp');
      await IptablesChain.remove();
      net = await PodNetwork.create({ prefix: 'ctbp', pods: ['client', 'server'] });
      agents.push(await PodAgent.start(net, 'client'), await PodAgent.start(net, 'server'));
      await agents[1]!.listen(5201);
    });
    after(async () => {
      await IptablesChain.remove();
      for (const a of agents) await a.stop();
      await net?.destroy();
    });

    it('iperf3 reports a positive TCP rate between the pods', async () => {
      const run = await measureIperf(net!, 'client', 'server', 1, 5301);
      expect(run.gbps).to.be.greaterThan(0);
    });

    it('the iptables chain sits in the forward path: its accept lets the flow through, its drop stops others', async () => {
      const n = net!;
      const server = n.pod('server').ip;
      const subnet = `${server.split('.').slice(0, 3).join('.')}.0/24`;
      const chain = await IptablesChain.create(200, { client: n.pod('client').ip, server, port: 5201, subnet });
      expect(await chain.listedRules()).to.equal(203);
      await chain.enable();
      expect(await agents[0]!.canConnect(server, 5201)).to.equal(true);
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

    it('times the no-op program per packet, repeated and in single runs', () => {
      const frame = (sport: number): Buffer => tcpPacket({ src: '10.9.0.1', dst: '10.9.0.2', sport, dport: 80, flags: TCP_SYN });
      const run = (data: Buffer, repeat: number) => prog!.testRun({ data, repeat });
      const repeated = nsPerPacket(run, frame(40000), 10_000, 3);
      expect(repeated.retval).to.equal(0);
      expect(repeated.ns).to.be.greaterThan(0);
      const single = nsPerSingleRun(run, (i) => frame(1024 + i), 50);
      expect(single.retval).to.equal(0);
      expect(single.ns).to.be.greaterThan(0);
    });

    it('median picks the middle sample', () => {
      expect(median([5, 1, 3])).to.equal(3);
      expect(median([4, 1, 3, 2])).to.equal(2.5);
      expect(() => median([])).to.throw(/no samples/);
    });
  });
});
