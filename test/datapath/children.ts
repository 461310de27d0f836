// Helper processes of the datapath tests (datapath owners, pod agents): each is tracked from the
// moment it is spawned, so a teardown can kill it even when its start never finished (a hang, a
// mocha timeout), and a start that gets no answer in time kills the child and says which one.
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** SIGKILL and wait for the exit (at once if it already exited). */
export async function killChild(child: ChildProcess): Promise<void> {
  if (!alive(child)) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

export class ChildSet {
  private readonly children = new Set<ChildProcess>();

  add(child: ChildProcess): ChildProcess {
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  get size(): number {
    return this.children.size;
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.children].map(killChild));
  }
}

/**
 * Resolves with `answer` once the child gives it. When the child exits first, or gives no answer
 * within `timeoutMs`, the child is killed and the error names it (`what`, pid) with its stderr.
 */
export async function awaitFirstAnswer<T>(child: ChildProcess, what: string, answer: Promise<T>, timeoutMs: number, stderr: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let onExit: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;
  const failed = new Promise<never>((_, reject) => {
    onExit = (code, signal) => reject(new Error(`${what} (pid ${String(child.pid)}) exited (code ${String(code)}, signal ${String(signal)}) before answering: ${stderr().trim()}`));
    child.once('exit', onExit);
    timer = setTimeout(() => {
      child.off('exit', onExit!);
      void killChild(child).then(() => reject(new Error(`${what} (pid ${String(child.pid)}) gave no answer within ${timeoutMs} ms and was killed; stderr: ${stderr().trim()}`)));
    }, timeoutMs);
  });
  try {
    return await Promise.race([answer, failed]);
  } catch (err) {
    await killChild(child);
    throw err;
  } finally {
    clearTimeout(timer);
    if (onExit) child.off('exit', onExit);
  }
}
