// Our cilium CLI against a real AgentDaemon (the e2e cluster: real apiserver, operator, kernel
// datapath, pods as network namespaces) and its REST API socket: `endpoint list` and `identity
// list` print what upstream's cilium-dbg prints against the same agent, `monitor` shows a real
// policy drop, and the `bpf` commands show the pods' entries also after the agent stopped.
import { expect } from 'chai';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCaptured } from '../../../controllers/cli/testing/run-captured.js';
import { defaultBinDir } from '../../../hack/controlplane/paths.js';
import { ping } from '../../datapath/harness.js';
import { E2ECluster, NODE_A, type PodHandle } from '../../e2e/harness.js';
import { runWithExitCode } from '../../envtest/command.js';
import { pollUntil } from '../../envtest/poll.js';

const CILIUM_DBG = path.join(defaultBinDir(), 'cilium-dbg');
const CONVERGE_MS = 20_000;
const PORT = 8080;

describe('cilium CLI against a running agent', function () {
  this.timeout(180_000);
  let cluster: E2ECluster | undefined;
  let web: PodHandle;
  let db: PodHandle;
  let host: string;
  let pinDir: string;

  before(async () => {
    if (!existsSync(CILIUM_DBG)) throw new Error(`${CILIUM_DBG} is missing: build it with \`bash hack/install-tools.sh all\``);
    cluster = await E2ECluster.start();
    const agent = cluster.agent(NODE_A);
    host = `unix://${agent.api.server.socketPath}`;
    pinDir = agent.datapath.bpffsDir;
    [web, db] = (await cluster.addPods(NODE_A, [
      { name: 'web', labels: { app: 'web' } },
      { name: 'db', labels: { app: 'db' } },
    ])) as [PodHandle, PodHandle];
    await cluster.kubectlApply({
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'db-from-web', namespace: cluster.namespace },
      spec: { endpointSelector: { matchLabels: { app: 'db' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'web' } }], toPorts: [{ ports: [{ port: String(PORT), protocol: 'TCP' }] }] }] },
    });
    await pollUntil('node A enforces ingress on db', () => agent.datapath.endpointPolicy(db.endpoint.id).realized?.enforcement.ingress === true, CONVERGE_MS);
  });

  after(() => cluster?.destroy());

  /** Ours and upstream's output of the same command, once both agree (the agent may still be settling). */
  async function agree(argv: string[]): Promise<string> {
    const deadline = Date.now() + CONVERGE_MS;
    for (;;) {
      const upstream = await runWithExitCode(CILIUM_DBG, [...argv, '-H', host]);
      const mine = await runCaptured([...argv, '-H', host]);
      if (mine.code === 0 && upstream.code === 0 && mine.stdout === upstream.stdout) return mine.stdout;
      if (Date.now() > deadline) {
        throw new Error(`cilium ${argv.join(' ')} and cilium-dbg still differ after ${CONVERGE_MS} ms\nours (exit ${mine.code}):\n${mine.stdout}${mine.stderr}\ncilium-dbg (exit ${upstream.code}):\n${upstream.stdout}${upstream.stderr}`);
      }
      await sleep(200);
    }
  }

  it('endpoint list: the same rows as cilium-dbg, with both pods', async () => {
    const text = await agree(['endpoint', 'list']);
    for (const pod of [web, db]) {
      expect(text).to.match(new RegExp(`^${pod.endpoint.id} .* ${pod.endpoint.identity} +k8s:app=${pod.name} .*${pod.ip.replace(/\./g, '\\.')} +ready +$`, 'm'));
    }
    expect(text).to.match(new RegExp(`^${db.endpoint.id} +Enabled +Disabled +`, 'm'));
  });

  it('identity list: the same rows as cilium-dbg, with the pods’ identities', async () => {
    const text = await agree(['identity', 'list']);
    for (const pod of [web, db]) expect(text).to.match(new RegExp(`^${pod.endpoint.identity} +k8s:app=${pod.name}$`, 'm'));
  });

  // cilium-dbg decodes the answer into its Go models and encodes it again, which drops empty
  // omitempty fields and writes absent lists as null; ours prints the answer as it came.
  const withoutZeroValues = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(withoutZeroValues);
    if (v !== null && typeof v === 'object') {
      const kept = Object.entries(v).map(([k, x]) => [k, withoutZeroValues(x)] as const);
      return Object.fromEntries(kept.filter(([, x]) => !isZero(x)));
    }
    return v;
  };
  const isZero = (v: unknown): boolean => v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.every(isZero)) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);

  it('status, ip list, policy get|selectors, map list|get: the same text as cilium-dbg', async () => {
    for (const argv of [['status'], ['ip', 'list'], ['policy', 'get'], ['policy', 'selectors'], ['map', 'list'], ['map', 'get', 'cilium_lxc']]) await agree(argv);
  });

  /** `v` with only the object keys `shape` has, recursively. */
  const keepKnown = (v: unknown, shape: unknown): unknown => {
    if (Array.isArray(v) && Array.isArray(shape)) return v.map((x, i) => keepKnown(x, shape[i]));
    if (v !== null && typeof v === 'object' && shape !== null && typeof shape === 'object' && !Array.isArray(shape)) {
      return Object.fromEntries(Object.entries(v).filter(([k]) => k in shape).map(([k, x]) => [k, keepKnown(x, (shape as Record<string, unknown>)[k])]));
    }
    return v;
  };

  it('-o json: what cilium-dbg prints from the agent’s answers, ours prints too', async () => {
    for (const argv of [
      ['endpoint', 'list', '-o', 'json'],
      ['endpoint', 'get', String(db.endpoint.id)],
      ['identity', 'list', '-o', 'json'],
      ['ip', 'list', '-o', 'json'],
      ['policy', 'selectors', '-o', 'json'],
    ]) {
      const upstream = await runWithExitCode(CILIUM_DBG, [...argv, '-H', host]);
      const mine = await runCaptured([...argv, '-H', host]);
      expect(upstream.code, upstream.stderr).to.equal(0);
      expect(mine.code, mine.stderr).to.equal(0);
      const ours = withoutZeroValues(JSON.parse(mine.stdout));
      const theirs = withoutZeroValues(JSON.parse(upstream.stdout));
      // Fields upstream's models lack are dropped by cilium-dbg; everything it keeps must be ours.
      expect(keepKnown(ours, theirs), argv.join(' ')).to.deep.equal(theirs);
    }
  });

  it('monitor shows the policy drop of a ping db does not allow', async () => {
    const stop = new AbortController();
    const monitor = runCaptured(['monitor', '-t', 'drop', '--related-to', String(db.endpoint.id), '-H', host], { signal: stop.signal });
    try {
      await pollUntil('the monitor to subscribe', () => cluster!.agent(NODE_A).api.monitor.clientCount > 0, CONVERGE_MS);
      expect(await ping(web.net, web.slot, db.ip), 'ping web → db').to.equal(false);
    } finally {
      // Time for the drop's line to arrive before the monitor is interrupted.
      setTimeout(() => stop.abort(), 500);
    }
    const run = await monitor;
    expect(run.code, run.stderr).to.equal(0);
    expect(run.stderr).to.match(/Press Ctrl-C to quit\n/);
    // The drop site the record carries: bpf_lxc.c, the program that judged the ping.
    expect(run.stdout).to.match(new RegExp(`^xx drop \\(Policy denied\\) flow 0x0 to endpoint ${db.endpoint.id}, ifindex 0, file bpf_lxc\\.c:[1-9]\\d*, , `, 'm'));
    expect(run.stdout).to.contain(`identity ${web.endpoint.identity}->${db.endpoint.identity}: ${web.ip} -> ${db.ip} icmp EchoRequest\n`);
    expect(run.stdout.split('\n').filter(Boolean).every((l) => l.startsWith('xx drop ')), run.stdout).to.equal(true);
  });

  it('bpf endpoint list and bpf policy get show the pods, also after the agent stopped', async () => {
    const bpfState = async () => {
      const eps = await runCaptured(['bpf', 'endpoint', 'list', '--bpf-pin-dir', pinDir]);
      const policy = await runCaptured(['bpf', 'policy', 'get', String(db.endpoint.id), '-n', '--bpf-pin-dir', pinDir]);
      expect(eps.code, eps.stderr).to.equal(0);
      expect(policy.code, policy.stderr).to.equal(0);
      return { eps: eps.stdout, policy: policy.stdout };
    };
    const live = await bpfState();
    for (const pod of [web, db]) expect(live.eps).to.match(new RegExp(`^${pod.ip.replace(/\./g, '\\.')}:0 +id=${pod.endpoint.id} +sec_id=${pod.endpoint.identity} `, 'm'));
    expect(live.policy).to.match(new RegExp(`^Allow +Ingress +${web.endpoint.identity} +${PORT}/TCP +NONE +disabled +- +- +24 +\\d+$`, 'm'));
    // Without -n the labels come from the agent's API.
    const labelled = await runCaptured(['bpf', 'policy', 'get', String(db.endpoint.id), '--bpf-pin-dir', pinDir, '-H', host]);
    expect(labelled.stdout).to.match(new RegExp(`^Allow +Ingress +k8s:app=web +${PORT}/TCP `, 'm'));

    await cluster!.stopAgent(NODE_A);
    expect(await bpfState()).to.deep.equal(live);
    const down = await runCaptured(['endpoint', 'list', '-H', host]);
    expect(down.code).to.equal(1);
    expect(down.stderr).to.match(/^Error: cannot get endpoint list: .*is unreachable.*\n$/);
  });
});
