// What every command gets: where to write, the agent client and pin directory for the flags
// given, and the one error type that ends a command with upstream's "Error: ..." and exit code 1.
import { AgentApiError, AgentClient } from '../agent/api/client.js';
import { jsonOutput } from './text/go-format.js';
import { resolveTarget, type Target, type TargetFlags } from './target.js';

export interface CliIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
  now(): Date;
  /** Ends long-running commands (monitor); SIGINT in the real entry point. */
  signal?: AbortSignal;
}

/** A failure a command reports as one line; the process exits 1. */
export class CliError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CliError';
  }
}

/** The agent's own message for a failed call (upstream's error bodies are JSON strings). */
export function agentErrorText(err: unknown): string {
  if (err instanceof AgentApiError) {
    const body = typeof err.body === 'string' ? err.body : JSON.stringify(err.body);
    return `${body} (HTTP ${err.status})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** `-o json`, on every command as upstream's command.AddOutputOption adds it. */
export const OUTPUT_FLAG = ['-o, --output <format>', 'json'] as const;

export interface OutputFlags {
  output?: string;
}

/** `-o json` → true; no -o → false; any other format is refused naming the flag. */
export function wantsJson(flags: OutputFlags): boolean {
  if (flags.output === undefined) return false;
  if (flags.output === 'json') return true;
  throw new CliError(`-o/--output ${JSON.stringify(flags.output)}: only "json" is supported`);
}

export class CliContext {
  private resolved: Target | undefined;
  private agent: AgentClient | undefined;

  constructor(
    readonly io: CliIO,
    private readonly flags: TargetFlags,
  ) {}

  get target(): Target {
    this.resolved ??= resolveTarget(this.flags, this.io.env);
    return this.resolved;
  }

  get client(): AgentClient {
    this.agent ??= new AgentClient({ socketPath: this.target.socketPath });
    return this.agent;
  }

  /** GET from the agent; a failure becomes a CliError led by `what` ("Cannot get endpoint 42"). */
  async get<T>(what: string, apiPath: string, query?: Record<string, string | undefined>): Promise<T> {
    const client = this.client;
    try {
      return await client.request<T>('GET', apiPath, { query });
    } catch (err) {
      throw new CliError(`${what}: ${agentErrorText(err)}`, { cause: err });
    }
  }

  printJson(value: unknown): void {
    this.io.stdout(jsonOutput(value));
  }
}
