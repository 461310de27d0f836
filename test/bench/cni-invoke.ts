// One CNI plugin call the way libcni makes it for a member of a conflist: the plugin binary from
// CNI_PATH, the CNI_* environment, the member's configuration with the list's name and cniVersion
// (and on DEL the ADD's result as prevResult) on stdin. Timed from spawn to exit: what the plugin
// process takes, the same for every plugin. A node's runtime runs its plugins inside the node's
// network namespace: NetnsInvoker makes the calls from a helper process living there.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import type { Conflist } from '../../controllers/agent/cni-config.js';
import { spawnInNetns } from '../../datapath/netns/netns.js';
import type { NetnsRef } from '../../datapath/netns/netns-ref.js';

export interface PluginCall {
  command: 'ADD' | 'DEL' | 'VERSION';
  /** CNI_PATH: where the plugin (and any plugin it delegates to, e.g. host-local) lives. */
  binDir: string;
  conflist: Conflist;
  containerId: string;
  netns: string;
  ifName: string;
  /** CNI_ARGS, `K=V;K=V` as containerd passes them (IgnoreUnknown=1;K8S_POD_NAMESPACE=...). */
  args: string;
  prevResult?: unknown;
}

export interface PluginOutcome {
  ms: number;
  /** The JSON the plugin printed (a result, a version answer, or nothing for DEL). */
  output: unknown;
}

/** The stdin of conflist member `index`, as libcni builds it. */
export function pluginConfig(conflist: Conflist, index: number, prevResult?: unknown): Record<string, unknown> {
  const member = conflist.plugins[index];
  if (member === undefined) throw new Error(`conflist ${conflist.name}: no plugin #${index}`);
  return { ...member, name: conflist.name, cniVersion: conflist.cniVersion, ...(prevResult === undefined ? {} : { prevResult }) };
}

/** The spec's error object (code, msg, details) in one line, if that is what `stdout` holds. */
function cniError(stdout: string): string | undefined {
  try {
    const e = JSON.parse(stdout) as { code?: number; msg?: string; details?: string };
    if (e.msg === undefined) return undefined;
    return `CNI error ${e.code}: ${e.msg}${e.details ? ` (${e.details})` : ''}`;
  } catch {
    return undefined;
  }
}

/** Runs the conflist's first plugin; rejects with the plugin's error object (code, msg, details) when it fails. */
export function invokePlugin(call: PluginCall): Promise<PluginOutcome> {
  const conf = pluginConfig(call.conflist, 0, call.prevResult);
  const binary = path.join(call.binDir, String(conf.type));
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId,
    CNI_NETNS: call.netns,
    CNI_IFNAME: call.ifName,
    CNI_ARGS: call.args,
    CNI_PATH: call.binDir,
  };
  const what = `${call.command} ${binary} (container ${call.containerId.slice(0, 12)})`;
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(binary, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (err) => reject(new Error(`${what}: cannot run: ${err.message}`)));
    child.stdin.on('error', () => undefined);
    child.stdin.end(JSON.stringify(conf));
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      if (code !== 0) {
        reject(new Error(`${what}: exit ${code ?? signal}: ${cniError(stdout) ?? (stdout.trim() || stderr.trim().slice(-500))}`));
        return;
      }
      try {
        resolve({ ms, output: stdout.trim() === '' ? undefined : JSON.parse(stdout) });
      } catch (err) {
        reject(new Error(`${what}: undecodable output ${JSON.stringify(stdout.slice(0, 300))}: ${(err as Error).message}`));
      }
    });
  });
}

interface InvokerReply {
  id: number;
  ms?: number;
  output?: unknown;
  error?: string;
}

/**
 * Plugin calls made from a helper inside a network namespace (a node's, where its containerd runs
 * plugins and its agent looks for pods' links): one helper for the whole run, so no namespace
 * entry is timed, only the plugin process as invokePlugin times it there.
 */
export class NetnsInvoker {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (o: PluginOutcome) => void; reject: (e: Error) => void }>();
  private stderr = '';

  private constructor(
    private readonly child: ChildProcess,
    private readonly where: string,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const reply = JSON.parse(line) as InvokerReply;
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.error !== undefined) waiter?.reject(new Error(reply.error));
      else waiter?.resolve({ ms: reply.ms as number, output: reply.output });
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr = (this.stderr + chunk).slice(-2000)));
    child.once('exit', (code, signal) => {
      for (const w of this.pending.values()) w.reject(new Error(`CNI call helper ${where} exited (${code ?? signal}): ${this.stderr.trim()}`));
      this.pending.clear();
    });
  }

  static start(netns: NetnsRef): NetnsInvoker {
    const where = typeof netns === 'string' ? `in netns ${netns}` : `in netns at ${netns.path}`;
    const child = spawnInNetns(netns, process.execPath, ['--import', 'tsx', import.meta.filename, '--serve']);
    return new NetnsInvoker(child, where);
  }

  invoke(call: PluginCall): Promise<PluginOutcome> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, call })}\n`);
    });
  }

  async close(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.stdin!.end();
    await exited;
  }
}

/** The helper's side: one call per stdin line, one reply per stdout line, until stdin ends. */
async function serve(): Promise<void> {
  for await (const line of createInterface({ input: process.stdin })) {
    const { id, call } = JSON.parse(line) as { id: number; call: PluginCall };
    const reply: InvokerReply = await invokePlugin(call).then(
      (o) => ({ id, ms: o.ms, output: o.output }),
      (err: Error) => ({ id, error: err.message }),
    );
    process.stdout.write(`${JSON.stringify(reply)}\n`);
  }
}

if (process.argv[1] === import.meta.filename && process.argv[2] === '--serve') {
  serve().catch((err: Error) => {
    process.stderr.write(`cni-invoke helper: ${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
