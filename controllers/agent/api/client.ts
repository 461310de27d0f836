// A client of the agent's REST API over its unix socket, for the CNI plugin, the CLI and tests.
// JSON in and out; errors carry the method, the path and the server's message, which upstream
// sends as a JSON string (its swagger `Error` model is `type: string`).
import type { Readable } from 'node:stream';
import { ConnectError, Http1Pool, type Http1Response } from './http1.js';

export const DEFAULT_SOCKET_PATH = '/var/run/cilium/cilium.sock';
const API_BASE = '/v1';

/** The agent answered with a non-2xx status. */
export class AgentApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`${method} ${API_BASE}${path}: HTTP ${status}: ${errorText(body)}`);
  }
}

/** Nothing answers on the socket (missing file, refused): the agent is not running. */
export class AgentUnreachableError extends Error {
  constructor(
    readonly socketPath: string,
    cause: Error,
  ) {
    super(`cilium agent at unix://${socketPath} is unreachable: ${cause.message}`, { cause });
  }
}

function errorText(body: unknown): string {
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object' && 'message' in body) return String(body.message);
  return JSON.stringify(body);
}

const UNREACHABLE_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK', 'EACCES']);

/** `-H unix:///path`, `unix:/path` or `/path` → the socket path; anything else is refused. */
export function parseHostFlag(value: string): string {
  const m = /^(?:unix:\/\/|unix:)?(\/.*)$/.exec(value);
  if (!m) throw new Error(`-H/--host ${JSON.stringify(value)}: expected unix:///path/to/cilium.sock (only unix sockets are served)`);
  return m[1] as string;
}

export interface AgentClientOptions {
  socketPath: string;
  /** Per request; streams are not bounded. Default 30 s. */
  timeoutMs?: number;
}

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string>;
}

export class AgentClient {
  readonly socketPath: string;
  private readonly timeoutMs: number;
  private readonly pool: Http1Pool;

  constructor(opts: AgentClientOptions) {
    this.socketPath = opts.socketPath;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.pool = new Http1Pool(opts.socketPath);
  }

  /** `path` is relative to /v1. Resolves to the parsed JSON body (undefined when empty). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts, this.timeoutMs);
    const body = parseBody(await readAll(res.body));
    if (res.status < 200 || res.status > 299) throw new AgentApiError(method, path, res.status, body);
    return body as T;
  }

  /**
   * A streaming GET answering one JSON document per line, until `signal` aborts or the agent ends
   * it. Resolves once the agent answered (for /monitor: once this reader is subscribed, so what
   * happens afterwards is in the stream); a 4xx/5xx throws here.
   */
  async stream<T>(path: string, signal?: AbortSignal): Promise<AsyncIterable<T>> {
    const res = await this.send('GET', path, {}, 0, signal);
    if (res.status < 200 || res.status > 299) throw new AgentApiError('GET', path, res.status, parseBody(await readAll(res.body)));
    return jsonLines<T>(res.body, signal);
  }

  private async send(method: string, path: string, opts: RequestOptions, timeoutMs: number, signal?: AbortSignal): Promise<Http1Response> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) query.set(k, v);
    const qs = query.size > 0 ? `?${query.toString()}` : '';
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      return await this.pool.exchange({
        method,
        target: `${API_BASE}${path}${qs}`,
        headers,
        ...(body === undefined ? {} : { body }),
        timeoutMs,
        ...(signal === undefined ? {} : { signal }),
        timeoutError: () => new Error(`${method} ${API_BASE}${path}: no answer within ${timeoutMs} ms`),
      });
    } catch (err) {
      if (err instanceof ConnectError && err.cause.code !== undefined && UNREACHABLE_CODES.has(err.cause.code)) throw new AgentUnreachableError(this.socketPath, err.cause);
      throw err instanceof ConnectError ? err.cause : err;
    }
  }
}

function parseBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

async function* jsonLines<T>(body: Readable, signal?: AbortSignal): AsyncIterable<T> {
  let pending = '';
  try {
    for await (const chunk of body) {
      pending += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line !== '') yield JSON.parse(line) as T;
      }
    }
  } catch (err) {
    if (signal?.aborted) return;
    throw err;
  } finally {
    body.destroy();
  }
}

async function readAll(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
