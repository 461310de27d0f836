// Drives a fixtures/pod-agent.ts process inside a pod's netns: TCP servers, probes, kept-open
// connections and byte-counted streams, each request answered over the agent's stdio.
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import type { PodNetwork } from '../../datapath/netns/pod-network.js';
import type { AgentReply, AgentRequest } from './fixtures/pod-agent.js';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { awaitFirstAnswer, killChild } from './children.js';
import type { ChildSet } from './children.js';

const AGENT_SCRIPT = fileURLToPath(new URL('./fixtures/pod-agent.ts', import.meta.url));
// Loading node with tsx inside a netns takes a second or so; a loaded machine gets ample slack.
const START_TIMEOUT_MS = 30_000;

/** Omit applied to each member of a union, so every op keeps its own fields. */
type OmitEach<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A request before the driver numbers it. */
type Request = OmitEach<AgentRequest, 'id'>;

export interface StreamCount {
  sent: number;
  received: number;
  mismatches: number;
}

export interface ProbeCount {
  attempts: number;
  admitted: number;
  /** Source port of each attempt (each sent one SYN from it). */
  sourcePorts: number[];
}

export class PodAgent {
  private nextId = 1;
  private readonly pending = new Map<number, (r: AgentReply) => void>();
  private exited?: string;
  private stderr = '';

  private constructor(
    readonly pod: string,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as AgentReply;
      this.pending.get(r.id)?.(r);
      this.pending.delete(r.id);
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    child.on('exit', (code, signal) => {
      this.exited = `pod agent in ${pod} exited (code ${String(code)}, signal ${String(signal)}): ${this.stderr.trim()}`;
      for (const resolve of this.pending.values()) resolve({ id: -1, ok: false, error: this.exited });
      this.pending.clear();
    });
  }

  /**
   * Starts the agent in the pod's netns (tracked in `children` from its spawn) and waits until it
   * answers; an agent that does not answer in time is killed.
   */
  static async start(net: PodNetwork, pod: string, children: ChildSet): Promise<PodAgent> {
    const child = children.add(net.spawn(pod, process.execPath, ['--import', 'tsx', AGENT_SCRIPT], { cwd: repoRoot }));
    const agent = new PodAgent(pod, child);
    const ready = await awaitFirstAnswer(child, `pod agent in ${pod}`, new Promise<AgentReply>((resolve) => agent.pending.set(0, resolve)), START_TIMEOUT_MS, () => agent.stderr);
    if (!ready.ok) {
      await killChild(child);
      throw new Error(`start pod agent in ${pod}: ${ready.error}`);
    }
    return agent;
  }

  private request(req: Request): Promise<AgentReply> {
    if (this.exited) return Promise.resolve({ id: -1, ok: false, error: this.exited });
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.child.stdin!.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  private async must(req: Request): Promise<Record<string, unknown>> {
    const r = await this.request(req);
    if (!r.ok) throw new Error(`pod ${this.pod}: ${req.op} failed: ${r.error}`);
    return r;
  }

  async listen(port: number): Promise<void> {
    await this.must({ op: 'listen', port });
  }

  /** True when a TCP handshake to host:port completes within timeoutMs. */
  async canConnect(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
    const r = await this.request({ op: 'connect', host, port, timeoutMs });
    if (!r.ok && this.exited) throw new Error(r.error);
    return r.ok;
  }

  /** Opens a connection kept under `name` for echo and stream requests. */
  async open(name: string, host: string, port: number, timeoutMs = 3000): Promise<void> {
    await this.must({ op: 'connect', host, port, timeoutMs, keep: name });
  }

  async echo(name: string, bytes: number, timeoutMs = 3000): Promise<StreamCount> {
    return (await this.must({ op: 'echo', conn: name, bytes, timeoutMs })) as unknown as StreamCount;
  }

  async startStream(name: string, chunkBytes = 16 * 1024, intervalMs = 2): Promise<void> {
    await this.must({ op: 'stream-start', conn: name, chunkBytes, intervalMs });
  }

  /** Stops writing and resolves once every byte written came back (or fails naming the shortfall). */
  async stopStream(name: string, timeoutMs = 10_000): Promise<StreamCount> {
    return (await this.must({ op: 'stream-stop', conn: name, timeoutMs })) as unknown as StreamCount;
  }

  async serverStats(port: number): Promise<{ bytesIn: number; connections: number }> {
    return (await this.must({ op: 'server-stats', port })) as unknown as { bytesIn: number; connections: number };
  }

  /** Starts connection attempts to host:port every intervalMs, each given up after timeoutMs. */
  async startProbe(name: string, host: string, port: number, intervalMs = 10, timeoutMs = 250): Promise<void> {
    await this.must({ op: 'probe-start', probe: name, host, port, intervalMs, timeoutMs });
  }

  /** Stops starting attempts and resolves once every attempt has ended. */
  async stopProbe(name: string): Promise<ProbeCount> {
    return (await this.must({ op: 'probe-stop', probe: name })) as unknown as ProbeCount;
  }

  async close(name: string): Promise<void> {
    await this.must({ op: 'close', conn: name });
  }

  /** Ends the agent (closing stdin makes it exit; SIGKILL after 5 s) and waits for the process to go. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const timer = setTimeout(() => void killChild(this.child), 5000);
    await gone;
    clearTimeout(timer);
  }
}
