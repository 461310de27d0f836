// iperf3 TCP throughput between two pods (of a PodNetwork, or on two nodes): a server in one
// netns, a client run to completion in the other, the receiver-side rate read from the client's
// JSON report.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { CommandOutput, RunOptions } from '../../datapath/netns/run.js';

/** Pods by name: what PodNetwork offers, and what the cross-node benchmark's pods offer too. */
export interface IperfPods {
  pod(name: string): { ip: string };
  spawn(pod: string, file: string, args: readonly string[]): ChildProcess;
  exec(pod: string, file: string, args: readonly string[], opts?: RunOptions): Promise<CommandOutput>;
}

export interface IperfRun {
  gbps: number;
  retransmits: number;
}

interface IperfReport {
  end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } };
  error?: string;
}

/** Waits for the server's "Server listening" line (printed at once thanks to --forceflush). */
async function startServer(net: IperfPods, pod: string, port: number): Promise<() => Promise<void>> {
  const child = net.spawn(pod, 'iperf3', ['--server', '--bind', net.pod(pod).ip, '--port', String(port), '--forceflush']);
  let output = '';
  const listening = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('Server listening')) resolve();
    });
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('exit', (code) => reject(new Error(`iperf3 server in ${pod} exited with ${String(code)} before listening: ${output.trim()}`)));
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await listening;
  } catch (err) {
    await stop();
    throw err;
  }
  return stop;
}

/**
 * One TCP stream for `seconds` (the first second omitted as slow start) from `client` to `server`.
 */
export async function measureIperf(net: IperfPods, client: string, server: string, seconds: number, port = 5201): Promise<IperfRun> {
  const stopServer = await startServer(net, server, port);
  try {
    const { stdout } = await net.exec(
      client,
      'iperf3',
      ['--client', net.pod(server).ip, '--port', String(port), '--time', String(seconds), '--omit', '1', '--json'],
      { timeoutMs: (seconds + 20) * 1000 },
    );
    const report = JSON.parse(stdout) as IperfReport;
    const bps = report.end?.sum_received?.bits_per_second;
    if (report.error !== undefined || bps === undefined) {
      throw new Error(`iperf3 ${client} -> ${server}: ${report.error ?? 'report has no end.sum_received'}`);
    }
    return { gbps: bps / 1e9, retransmits: report.end?.sum_sent?.retransmits ?? 0 };
  } finally {
    await stopServer();
  }
}
