// The agent's REST API server: HTTP on a unix socket (upstream's /var/run/cilium/cilium.sock), base
// path /v1, JSON in and out, errors as upstream's swagger `Error` (a JSON string). It runs as a
// Manager part, so it stops with the agent; a handler that throws answers 500 and never takes the
// agent down.
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { newLogger, type Logger } from '../../runtime/log.js';
import { ApiError, badRequest } from './errors.js';
import { API_BASE, type ApiReply, type ApiRequest, type Router } from './router.js';

/** rw for root and its group (upstream's socket group `cilium`), nothing for others. */
export const SOCKET_MODE = 0o660;
const MAX_BODY_BYTES = 1 << 20;

export interface ApiServerOptions {
  socketPath: string;
  router: Router;
  logger?: Logger;
}

/** The request body as JSON; 400 naming the body when it is not JSON. Empty: undefined. */
export function jsonBody(req: Pick<ApiRequest, 'body'>, what = 'request body'): unknown {
  if (req.body.trim() === '') return undefined;
  try {
    return JSON.parse(req.body) as unknown;
  } catch (err) {
    throw badRequest(what, `not valid JSON: ${(err as Error).message}`);
  }
}

/** Whether something answers on the socket file (another agent): then it must not be replaced. */
function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(socketPath);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

export class ApiServer {
  private readonly log: Logger;

  constructor(private readonly opts: ApiServerOptions) {
    this.log = opts.logger ?? newLogger('api');
  }

  get socketPath(): string {
    return this.opts.socketPath;
  }

  /**
   * Serves until `signal` aborts; then closes every connection (streams too) and removes the
   * socket, unless another server has taken the path over since.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const { server, inode } = await this.listen(signal);
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    const now = await stat(this.opts.socketPath).catch(() => undefined);
    if (now?.ino === inode) await rm(this.opts.socketPath, { force: true });
    this.log.info('API server stopped', { socket: this.opts.socketPath });
  }

  /**
   * Binds a fresh socket beside the path and renames it over: the path always names a live
   * socket, and it stays this server's to remove (Node unlinks the name it bound at close, which
   * is then the temporary one, long gone).
   */
  private async listen(stop: AbortSignal): Promise<{ server: http.Server; inode: number }> {
    const socketPath = this.opts.socketPath;
    await mkdir(path.dirname(socketPath), { recursive: true });
    const existing = await stat(socketPath).catch(() => undefined);
    if (existing !== undefined) {
      if (!existing.isSocket()) throw new Error(`API socket ${socketPath}: exists and is not a socket; refusing to replace it`);
      // As upstream: the path is the new agent's, whether the old socket is stale (an agent that
      // did not stop cleanly) or still served (its clients move to this agent).
      if (await socketAnswers(socketPath)) this.log.warn('API socket served by another process; taking it over', { socket: socketPath });
    }
    const bound = `${socketPath}.${process.pid}`;
    await rm(bound, { force: true });
    const server = http.createServer((req, res) => void this.serve(req, res, stop));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bound, () => {
        server.off('error', reject);
        resolve();
      });
    });
    try {
      await chmod(bound, SOCKET_MODE);
      await rename(bound, socketPath);
    } catch (err) {
      server.close();
      throw new Error(`API socket ${socketPath}: ${(err as Error).message}`, { cause: err });
    }
    this.log.info('API server listening', { socket: socketPath });
    return { server, inode: (await stat(socketPath)).ino };
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse, stop: AbortSignal): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const fullPath = q < 0 ? url : url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    const gone = new AbortController();
    res.once('close', () => gone.abort());
    const signal = AbortSignal.any([gone.signal, stop]);
    try {
      if (fullPath !== API_BASE && !fullPath.startsWith(`${API_BASE}/`)) throw new ApiError(404, `path ${fullPath} not found: the API is under ${API_BASE}`);
      const sub = fullPath.slice(API_BASE.length) || '/';
      const match = this.opts.router.match(method, sub);
      if (match.kind === 'no-path') throw new ApiError(404, `path ${fullPath} not found`);
      if (match.kind === 'no-method') {
        res.setHeader('Allow', match.allowed.join(', '));
        throw new ApiError(405, `method ${method} not allowed on ${fullPath} (allowed: ${match.allowed.join(', ')})`);
      }
      const body = await readBody(req);
      const reply = await match.handler({ method, path: sub, params: match.params, query, headers: req.headers, body, signal, res });
      if (reply !== undefined) send(res, reply);
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      // 501/502/503 answer for a disabled feature or a part not ready: the caller's to handle.
      if (status === 500) this.log.error('API request failed', { method, path: fullPath, status, error: message });
      else this.log.debug('API request refused', { method, path: fullPath, status, error: message });
      if (res.headersSent) res.destroy();
      else send(res, { status, body: message });
    }
  }
}

function send(res: http.ServerResponse, reply: ApiReply): void {
  if (reply.body === undefined) {
    res.writeHead(reply.status).end();
    return;
  }
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) }).end(text);
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new ApiError(413, `request body: larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
