// A client of the agent's REST API over its unix socket, for the CNI plugin, the CLI and tests.
// JSON in and out; errors carry the method, the path and the server's message, which upstream
// sends as a JSON string (its swagger `Error` model is `type: string`).
import http from 'node:http';

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

  constructor(opts: AgentClientOptions) {
    this.socketPath = opts.socketPath;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  /** `path` is relative to /v1. Resolves to the parsed JSON body (undefined when empty). */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, opts, this.timeoutMs);
    const text = await readAll(res);
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) throw new AgentApiError(method, path, status, body);
    return body as T;
  }

  /** A streaming GET answering one JSON document per line, until `signal` aborts or the agent ends it. */
  async *stream<T>(path: string, signal?: AbortSignal): AsyncIterable<T> {
    const res = await this.send('GET', path, {}, 0, signal);
    const status = res.statusCode ?? 0;
    if (status < 200 || status > 299) {
      const text = await readAll(res);
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // keep the raw text
      }
      throw new AgentApiError('GET', path, status, body);
    }
    let pending = '';
    try {
      for await (const chunk of res) {
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
      res.destroy();
    }
  }

  private send(method: string, path: string, opts: RequestOptions, timeoutMs: number, signal?: AbortSignal): Promise<http.IncomingMessage> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) query.set(k, v);
    const qs = query.size > 0 ? `?${query.toString()}` : '';
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = { Accept: 'application/json', ...opts.headers };
    if (payload !== undefined) {
      headers['Content-Type'] = 'application/json';
      // node sends a DELETE body neither chunked nor sized unless told: the server would read it as the next request.
      headers['Content-Length'] = String(Buffer.byteLength(payload));
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ socketPath: this.socketPath, path: `${API_BASE}${path}${qs}`, method, headers, signal });
      if (timeoutMs > 0) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${API_BASE}${path}: no answer within ${timeoutMs} ms`)));
      }
      req.on('response', resolve);
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(err.code !== undefined && UNREACHABLE_CODES.has(err.code) ? new AgentUnreachableError(this.socketPath, err) : err);
      });
      req.end(payload);
    });
  }
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
