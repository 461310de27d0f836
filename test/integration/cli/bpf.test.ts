// The `bpf` commands against the real datapath: two pods as network namespaces with the endpoint
// programs on their veths, real pings filling conntrack and metrics, and the CLI reading the pins
// while the datapath runs and again after it closed (the agent stopped).
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makePinDir, removePinDir } from '../../../datapath/linux/testing/fixtures.js';
import { IPPROTO_ICMP } from '../../../datapath/maps/protocols.js';
import { PodNetwork } from '../../../datapath/netns/pod-network.js';
import type { Datapath } from '../../../datapath/types.js';
import { runCaptured } from '../../../controllers/cli/testing/run-captured.js';
import { runCleanup } from '../../datapath/cleanup-steps.js';
import { endpointFor, openDatapath, ping } from '../../datapath/harness.js';
import { defaultBinDir } from '../../../hack/controlplane/paths.js';
import { runWithExitCode } from '../../envtest/command.js';

const PREFIX = 'ctcli';
const EP = { a: 301, b: 302 } as const;
const ID = { a: 40001, b: 40002 } as const;
const CILIUM_DBG = path.join(defaultBinDir(), 'cilium-dbg');

/**
 * cilium-dbg reads its maps only from /sys/fs/bpf/tc/globals. In a private mount namespace that
 * path becomes a fresh bpffs with the test's pin directory bound onto it, so upstream's reader
 * sees our pins and the host's bpffs is left untouched.
 */
function upstreamOnPins(pinDir: string, args: string[]): ReturnType<typeof runWithExitCode> {
  const script = ['set -e', 'mkdir -p /run/ctcli-pins', 'mount --bind "$1" /run/ctcli-pins', 'mount -t bpf bpf /sys/fs/bpf', 'mkdir -p /sys/fs/bpf/tc/globals', 'mount --bind /run/ctcli-pins /sys/fs/bpf/tc/globals', 'shift', 'exec "$@"'].join('\n');
  return runWithExitCode('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', pinDir, CILIUM_DBG, ...args]);
}

/** Header line, then the rows in a fixed order: upstream walks a Go map, so its row order varies. */
function rowsAnyOrder(text: string): string[] {
  const [header = '', ...rows] = text.split('\n');
  return [header, ...rows.sort()];
}

describe('cilium bpf commands on the real datapath', function () {
  this.timeout(60_000);
  let net: PodNetwork | undefined;
  let pinDir: string | undefined;
  let dp: Datapath | undefined;
  const ip = (pod: 'a' | 'b'): string => net!.pod(pod).ip;

  before(async () => {
    await PodNetwork.sweep(PREFIX);
    net = await PodNetwork.create({ prefix: PREFIX, pods: ['a', 'b'] });
    pinDir = makePinDir();
    dp = await openDatapath(pinDir);
    for (const pod of ['a', 'b'] as const) await dp.upsertEndpoint(endpointFor(net.pod(pod), EP[pod], ID[pod]));
    await dp.syncPolicy(EP.a, [], { ingress: false, egress: false });
    // b takes pings from a only, and names a deny for world to show a deny row.
    await dp.syncPolicy(
      EP.b,
      [
        { identity: ID.a, direction: 'ingress', protocol: IPPROTO_ICMP, port: 0, endPort: 255, deny: false, cookie: 7 },
        { identity: 2, direction: 'ingress', protocol: 0, port: 0, deny: true },
      ],
      { ingress: true, egress: false },
    );
    await dp.syncIPCache('endpoint', [
      { prefix: `${ip('a')}/32`, identity: ID.a },
      { prefix: `${ip('b')}/32`, identity: ID.b },
    ]);
    expect(await ping(net, 'a', ip('b')), 'a pings b').to.equal(true);
  });

  after(() =>
    runCleanup('cli bpf test teardown', [
      ['close datapath', () => dp?.close()],
      ['destroy pod network', () => net?.destroy()],
      ['remove pin dir', () => removePinDir(pinDir)],
    ]),
  );

  async function snapshot(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const cmd of [
      ['bpf', 'endpoint', 'list'],
      ['bpf', 'ipcache', 'list'],
      ['bpf', 'policy', 'get', String(EP.b), '-n'],
      ['bpf', 'policy', 'get', '--all', '-n'],
    ]) {
      const run = await runCaptured([...cmd, '--bpf-pin-dir', pinDir!]);
      expect(run.code, `${cmd.join(' ')}: ${run.stderr}`).to.equal(0);
      out[cmd.join(' ')] = run.stdout;
    }
    return out;
  }

  it("lists the pods' endpoint, ipcache and policy entries, and the same after the datapath closed", async () => {
    const live = await snapshot();
    const a = net!.pod('a');
    expect(live['bpf endpoint list']).to.match(new RegExp(`^${ip('a').replace(/\./g, '\\.')}:0 +id=${EP.a} +sec_id=${ID.a} flags=0x0000 ifindex=${a.hostIfindex} +mac=${a.podMac.toUpperCase()} nodemac=${a.hostMac.toUpperCase()} `, 'm'));
    expect(live['bpf endpoint list']).to.match(new RegExp(`^${ip('b').replace(/\./g, '\\.')}:0 +id=${EP.b} +sec_id=${ID.b} `, 'm'));
    expect(live['bpf ipcache list']).to.match(new RegExp(`^${ip('b').replace(/\./g, '\\.')}/32 +identity=${ID.b} encryptkey=0 tunnelendpoint=0\\.0\\.0\\.0 flags=<none>`, 'm'));
    const rows = live[`bpf policy get ${EP.b} -n`]!.split('\n');
    expect(rows[0]).to.match(/^POLICY +DIRECTION +IDENTITY +PORT\/PROTO +PROXY PORT +AUTH TYPE +BYTES +PACKETS +PREFIX +COOKIE$/);
    // Deny rows come first, as upstream sorts them.
    expect(rows[1]).to.match(/^Deny +Ingress +2 +ANY +NONE +disabled +- +- +0 +\d+$/);
    expect(rows.slice(2).join('\n')).to.match(new RegExp(`^Allow +Ingress +${ID.a} +ICMP +NONE +disabled +- +- +8 +7$`, 'm'));
    expect(live['bpf policy get --all -n']).to.contain(`Endpoint ID: ${EP.a}\n`).and.contain(`Endpoint ID: ${EP.b}\n`).and.contain(`Path: ${pinDir}/cilium_policy_00${EP.b}\n`);

    await dp!.close();
    dp = undefined;
    expect(await snapshot()).to.deep.equal(live);
  });

  it('shows the pings in conntrack and metrics', async () => {
    const ct = await runCaptured(['bpf', 'ct', 'list', 'global', '--bpf-pin-dir', pinDir!]);
    expect(ct.code, ct.stderr).to.equal(0);
    expect(ct.stdout).to.match(new RegExp(`^ICMP (OUT|IN) ${ip('a').replace(/\./g, '\\.')}:\\d+ -> ${ip('b').replace(/\./g, '\\.')}:\\d+ expires=\\d+ Packets=[1-9]\\d* `, 'm'));
    const metrics = await runCaptured(['bpf', 'metrics', 'list', '--bpf-pin-dir', pinDir!]);
    expect(metrics.code, metrics.stderr).to.equal(0);
    expect(metrics.stdout.split('\n')[0]).to.match(/^REASON +DIRECTION +PACKETS +BYTES +LINE +FILE$/);
    expect(metrics.stdout).to.match(/^Success +(INGRESS|EGRESS) +[1-9]\d* +[1-9]\d* /m);
  });

  it('falls back to numeric identities, with upstream’s message, when no agent answers', async () => {
    const run = await runCaptured(['bpf', 'policy', 'get', String(EP.b), '--bpf-pin-dir', pinDir!, '-H', 'unix:///nonexistent/cilium.sock']);
    expect(run.code).to.equal(0);
    expect(run.stderr).to.match(new RegExp(`^Was impossible to retrieve label ID ${ID.a}: .*unreachable`, 'm'));
    expect(run.stdout).to.match(new RegExp(`^Allow +Ingress +${ID.a} `, 'm'));
  });

  it('prints what cilium-dbg prints for the same pinned endpoint, ipcache and metrics maps', async () => {
    if (!existsSync(CILIUM_DBG)) throw new Error(`${CILIUM_DBG} is missing: build it with \`bash hack/install-tools.sh all\``);
    for (const cmd of [
      ['bpf', 'endpoint', 'list'],
      ['bpf', 'ipcache', 'list'],
      ['bpf', 'metrics', 'list'],
    ]) {
      const upstream = await upstreamOnPins(pinDir!, cmd);
      const mine = await runCaptured([...cmd, '--bpf-pin-dir', pinDir!]);
      expect(upstream.code, `cilium-dbg ${cmd.join(' ')}: ${upstream.stderr}`).to.equal(0);
      expect(rowsAnyOrder(mine.stdout), cmd.join(' ')).to.deep.equal(rowsAnyOrder(upstream.stdout));
    }
  });

  it('names an endpoint without a policy map', async () => {
    const run = await runCaptured(['bpf', 'policy', 'get', '999', '--bpf-pin-dir', pinDir!]);
    expect(run).to.deep.include({ code: 1, stdout: '' });
    expect(run.stderr).to.equal(`Error: bpf policy get 999: endpoint 999 has no policy map at ${pinDir}/cilium_policy_00999\n`);
  });
});
