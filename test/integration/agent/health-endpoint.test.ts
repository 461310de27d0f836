// The health endpoint on the real kernel and datapath: its namespace holds the health IP behind a
// veth with the pod MTUs, the datapath has an open endpoint with the health identity on the veth,
// and the node pings it through the endpoint's programs; made again, it keeps its endpoint id;
// removed, nothing of it is left.
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { LinuxDatapath } from '../../../datapath/linux/linux-datapath.js';
import { makePinDir, removePinDir } from '../../../datapath/linux/testing/fixtures.js';
import { deleteNetns, listNetns } from '../../../datapath/netns/netns.js';
import { runCommand, runIpJson } from '../../../datapath/netns/run.js';
import { hostIfnameFor, removePodLink } from '../../../controllers/cni/pod-link.js';
import { HEALTH_IFNAME, HealthEndpoint } from '../../../controllers/agent/node/health-endpoint.js';
import { newLogger } from '../../../controllers/runtime/log.js';

const log = newLogger('health-endpoint-test', 'error');

interface RouteRow {
  dst: string;
  gateway?: string;
  metrics?: { mtu?: number }[];
}

describe('HealthEndpoint (real kernel, real datapath)', function () {
  this.timeout(60_000);
  const nodeName = `hep-${randomBytes(3).toString('hex')}`;
  const addressing = { podCIDR: '10.233.0.0/24', routerIP: '10.233.0.1', healthIP: '10.233.0.2' };
  let pinDir: string | undefined;
  let dp: LinuxDatapath | undefined;
  let health: HealthEndpoint | undefined;
  let reserved = 0;

  before(async () => {
    pinDir = makePinDir();
    dp = await LinuxDatapath.open({ bpffsDir: pinDir, logger: log });
    health = new HealthEndpoint({ nodeName, datapath: dp, reserveId: () => 3000 + ++reserved, logger: log });
  });
  after(async () => {
    const errors: unknown[] = [];
    const steps = [
      () => removePodLink(hostIfnameFor('cilium-health', HEALTH_IFNAME)),
      () => (health === undefined ? Promise.resolve(false) : deleteNetns(health.netns)),
      async () => dp?.close(),
      // eslint-disable-next-line @typescript-eslint/require-await
      async () => removePinDir(pinDir),
    ];
    for (const s of steps) await s().catch((err: unknown) => errors.push(err));
    if (errors.length > 0) throw new Error(`cleanup: ${errors.map(String).join('; ')}`);
  });

  const ping = (ip: string) =>
    runCommand(`ping ${ip}`, 'ping', ['-c', '1', '-W', '2', ip]).then(
      () => true,
      () => false,
    );

  it('answers the node\'s ping through an open endpoint with the health identity, and is made again in place', async () => {
    const h = health as HealthEndpoint;
    await h.ensure(addressing, { deviceMTU: 1500, routeMTU: 1450 });
    const id = h.endpointId as number;
    expect(id).to.equal(3001);
    expect(dp?.endpointPolicy(id).open, 'the endpoint has its policy').to.equal(true);
    expect(dp?.endpointPolicy(id).realized?.enforcement).to.deep.equal({ ingress: false, egress: false });

    const routes = await runIpJson<RouteRow>('health routes', ['route', 'show'], h.netns);
    const dflt = routes.find((r) => r.dst === 'default');
    expect(dflt?.gateway).to.equal(addressing.routerIP);
    expect(dflt?.metrics?.[0]?.mtu, 'the route leaves room for the tunnel header').to.equal(1450);
    const [link] = await runIpJson<{ mtu: number; addr_info: { local: string }[] }>('health link', ['addr', 'show', 'dev', HEALTH_IFNAME], h.netns);
    expect(link?.mtu).to.equal(1500);
    expect(link?.addr_info.map((a) => a.local)).to.deep.equal([addressing.healthIP]);

    expect(await ping(addressing.healthIP), 'the node pings its health endpoint').to.equal(true);
    // The ping passes the endpoint's programs: an ingress default deny on it stops it.
    await dp?.syncPolicy(id, [], { ingress: true, egress: false });
    expect(await ping(addressing.healthIP), 'denied by the endpoint\'s policy').to.equal(false);

    await h.ensure(addressing, { deviceMTU: 1500, routeMTU: 1450 });
    expect(h.endpointId, 'made again with the same id').to.equal(id);
    expect(reserved).to.equal(1);
    expect(await ping(addressing.healthIP), 'and answers again, its policy made again').to.equal(true);

    await h.remove();
    expect(await listNetns()).to.not.include(h.netns);
    expect(await ping(addressing.healthIP), 'gone').to.equal(false);
    await h.remove();
  });
});
