// New TCP connections per second between two pods of a PodNetwork: conn-rate.c serves in the
// server's netns and connects from the client's (connect, one byte each way, close). Each
// connection's first packet takes the new-flow path of whatever filters the pods' traffic, which a
// throughput run crosses once. The tool is compiled per measurement into a temp dir removed after.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PodNetwork } from '../../datapath/netns/pod-network.js';
import { runCommand } from '../../datapath/netns/run.js';
import { awaitFirstAnswer, ChildSet } from '../datapath/children.js';

const SOURCE = fileURLToPath(new URL('./conn-rate.c', import.meta.url));
// Processes per side: two cores, each side gets both, so neither waits on one blocked process.
const WORKERS = 4;
// A second bound besides time, so a run cannot use up the client's ports; the rate stays exact
// (completed over elapsed) whichever bound ends it.
const MAX_CONNECTIONS = 200_000;
// The client closes first, so its side of every connection sits in TIME_WAIT for 60 s: the
// widest port range and TIME_WAIT reuse keep successive runs from running out of ports.
const CLIENT_SYSCTLS = ['net.ipv4.ip_local_port_range=1024 65535', 'net.ipv4.tcp_tw_reuse=1'];
const START_TIMEOUT_MS = 10_000;

interface ToolReport {
  completed: number;
  failed: number;
  elapsed_ms: number;
  first_error: string;
}

export interface ConnRate {
  perSecond: number;
  completed: number;
}

async function startServer(net: PodNetwork, pod: string, tool: string, port: number, children: ChildSet): Promise<void> {
  const child = children.add(net.spawn(pod, tool, ['serve', net.pod(pod).ip, String(port), String(WORKERS)]));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  await awaitFirstAnswer(child, `conn-rate server in ${pod}`, listening, START_TIMEOUT_MS, () => stderr);
}

export async function measureConnRate(net: PodNetwork, client: string, server: string, seconds: number, port: number): Promise<ConnRate> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cilium-ts-conn-rate-'));
  const children = new ChildSet();
  try {
    const tool = path.join(dir, 'conn-rate');
    await runCommand('compile conn-rate.c', 'cc', ['-O2', '-Wall', '-Werror', '-o', tool, SOURCE]);
    await net.exec(client, 'sysctl', ['-q', '-w', ...CLIENT_SYSCTLS]);
    await startServer(net, server, tool, port, children);
    const { stdout } = await net.exec(
      client,
      tool,
      ['connect', net.pod(server).ip, String(port), String(seconds), String(MAX_CONNECTIONS), String(WORKERS)],
      { timeoutMs: (seconds + 30) * 1000 },
    );
    const report = JSON.parse(stdout) as ToolReport;
    // Every counted connection got its own byte back from the server: the path carried it both ways.
    if (report.failed > 0 || report.completed === 0) {
      throw new Error(`conn rate ${client} -> ${server}: ${report.completed} connections completed, ${report.failed} failed (first: ${report.first_error || 'none'})`);
    }
    return { perSecond: report.completed / (report.elapsed_ms / 1000), completed: report.completed };
  } finally {
    await children.killAll();
    await rm(dir, { recursive: true, force: true });
  }
}
