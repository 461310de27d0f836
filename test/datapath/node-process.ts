// Starts fixtures/node-datapath.ts inside a "node" network namespace and calls the datapath there:
// LinuxDatapath works in its caller's namespace, and a test's node is not the test's own.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { spawnInNetns } from '../../datapath/netns/netns.js';
import type { DatapathEvent, MetricCount, NodeNetworkStatus, SyncResult } from '../../datapath/types.js';
import { repoRoot } from '../../hack/controlplane/paths.js';
import { awaitFirstAnswer } from './children.js';
import type { ChildSet } from './children.js';
import { NODE_ANSWER_MARK, NODE_READY_MARK, type NodeAnswer, type NodeRequest } from './node-protocol.js';

const SCRIPT = fileURLToPath(new URL('./fixtures/node-datapath.ts', import.meta.url));
// tsx, the object load and a first map read: seconds on a loaded 2-core machine.
const START_TIMEOUT_MS = 30_000;
const CALL_TIMEOUT_MS = 30_000;

type Method = NodeRequest['method'];
type ArgsOf<M extends Method> = Extract<NodeRequest, { method: M }>['args'];
type ResultOf<M extends Method> = M extends 'drainEvents' ? DatapathEvent[] : M extends 'metrics' ? MetricCount[] : M extends 'setupNode' ? NodeNetworkStatus : M extends 'syncNodeRoutes' | 'syncIPCache' | 'syncPolicy' ? SyncResult : null;

export class NodeProcess {
  private nextId = 1;
  private readonly pending = new Map<number, (a: NodeAnswer) => void>();
  private stderr = '';

  private constructor(
    readonly netns: string,
    private readonly child: ChildProcess,
  ) {}

  /** Starts the datapath in `/run/netns/<netns>` on `bpffsDir`; tracked in `children` from its spawn. */
  static async start(netns: string, bpffsDir: string, children: ChildSet): Promise<NodeProcess> {
    // nsenter enters the network namespace alone: the bpffs mount stays the one the test sees.
    const child = children.add(spawnInNetns({ path: `/run/netns/${netns}` }, process.execPath, ['--import', 'tsx', SCRIPT, bpffsDir], { cwd: repoRoot }));
    const node = new NodeProcess(netns, child);
    child.stderr!.on('data', (d: Buffer) => (node.stderr += d.toString()));
    const ready = new Promise<void>((resolve) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === NODE_READY_MARK) resolve();
        else if (line.startsWith(NODE_ANSWER_MARK)) {
          const a = JSON.parse(line.slice(NODE_ANSWER_MARK.length)) as NodeAnswer;
          node.settle(a);
        }
      });
    });
    await awaitFirstAnswer(child, `node datapath in ${netns}`, ready, START_TIMEOUT_MS, () => node.stderr);
    return node;
  }

  private settle(a: NodeAnswer): void {
    this.pending.get(a.id)?.(a);
    this.pending.delete(a.id);
  }

  /** One Datapath call in the node; rejects with the node's error message. */
  async call<M extends Method>(method: M, ...args: ArgsOf<M>): Promise<ResultOf<M>> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`node datapath in ${this.netns} is not running; stderr: ${this.stderr.trim()}`);
    const id = this.nextId++;
    const answered = new Promise<NodeAnswer>((resolve) => this.pending.set(id, resolve));
    this.child.stdin!.write(`${JSON.stringify({ id, method, args })}\n`);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`node datapath in ${this.netns}: no answer to ${method} within ${CALL_TIMEOUT_MS} ms; stderr: ${this.stderr.trim()}`)), CALL_TIMEOUT_MS);
    });
    try {
      const a = await Promise.race([answered, late]);
      if ('error' in a) throw new Error(`node datapath in ${this.netns}: ${method}: ${a.error}`);
      return a.result as ResultOf<M>;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes its stdin: the node closes the datapath (leaving pins, devices and programs) and exits. */
  async exit(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.stdin!.end();
    await exited;
  }
}
