// The one HTTP path to the apiserver for the runtime: client-node's KubeConfig supplies server,
// TLS material and auth headers; requests and watch streams run on node:https so that timeouts,
// aborts and stream errors are ours to see (client-node 1.4.0's watch hides them: ts-stack.md §1).
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';

/** A failed API call: `status` is the HTTP code (0 when no answer came), `reason` the Status reason. */
/**
 * The kubeconfig at `file` (upstream's --k8s-kubeconfig-path), or the in-cluster service account
 * when none is given. Never client-node's loadFromDefault: a stray KUBECONFIG or ~/.kube would win
 * over the in-cluster config.
 */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromCluster();
  return kc;
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason = '',
    readonly body = '',
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof ApiError && err.status === 404;
}

export function isConflict(err: unknown): boolean {
  return err instanceof ApiError && err.status === 409;
}

export function isGone(err: unknown): boolean {
  return err instanceof ApiError && err.status === 410;
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: Record<string, unknown>;
}

export interface RequestOptions {
  body?: unknown;
  /** Defaults to application/json when a body is given. */
  contentType?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ApiClient {
  /** A JSON request; rejects with ApiError on any status outside 2xx. */
  request<T>(method: string, apiPath: string, opts?: RequestOptions): Promise<T>;
  /**
   * Streams the watch at `apiPath` (which carries `watch=1` and its parameters), calling onEvent
   * per line in order. Resolves when the server ends the stream, rejects with ApiError on a non-200
   * answer or a broken stream, and resolves quietly once `signal` aborts.
   */
  watch(apiPath: string, onEvent: (event: WatchEvent) => void, signal: AbortSignal): Promise<void>;
}

const defaultTimeoutMs = 30_000;

function statusReason(body: string): { reason: string; message: string } {
  try {
    const status = JSON.parse(body) as { reason?: string; message?: string };
    return { reason: status.reason ?? '', message: status.message ?? body.slice(0, 300) };
  } catch {
    return { reason: '', message: body.slice(0, 300) };
  }
}

/** An ApiClient for the current context of `kubeConfig`, reusing connections through one agent. */
export function newApiClient(kubeConfig: KubeConfig): ApiClient {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error('API client: kubeconfig has no current cluster with a server');
  const secure = server.startsWith('https:');
  let agent: http.Agent | undefined;

  async function open(method: string, apiPath: string, headers: Record<string, string>, signal?: AbortSignal) {
    const opts: https.RequestOptions = { method, headers: { Accept: 'application/json', ...headers }, signal };
    // Re-applied per request so rotated tokens are picked up; the agent (TLS material) is kept.
    await kubeConfig.applyToHTTPSOptions(opts);
    agent ??= secure
      ? new https.Agent({ keepAlive: true, ca: opts.ca, cert: opts.cert, key: opts.key, rejectUnauthorized: opts.rejectUnauthorized, servername: opts.servername })
      : new http.Agent({ keepAlive: true });
    opts.agent = agent;
    return { url: `${server}${apiPath}`, opts, client: secure ? https : http };
  }

  return {
    async request<T>(method: string, apiPath: string, ro: RequestOptions = {}): Promise<T> {
      const body = ro.body === undefined ? undefined : JSON.stringify(ro.body);
      // Content-Length always: node:http frames no body of a DELETE on its own, and the apiserver
      // then reads that body as the next request on the kept-alive connection (400 Bad Request).
      const headers: Record<string, string> =
        body === undefined ? {} : { 'Content-Type': ro.contentType ?? 'application/json', 'Content-Length': String(Buffer.byteLength(body)) };
      const { url, opts, client } = await open(method, apiPath, headers, ro.signal);
      const timeoutMs = ro.timeoutMs ?? defaultTimeoutMs;
      const what = `${method} ${apiPath}`;
      const res = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = client.request(url, { ...opts, timeout: timeoutMs }, (r) => {
          let text = '';
          r.setEncoding('utf8');
          r.on('data', (chunk: string) => (text += chunk));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, text }));
          r.on('error', (err) => reject(new ApiError(`${what}: reading answer: ${err.message}`, 0)));
        });
        req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
        req.on('error', (err) => reject(new ApiError(`${what}: ${err.message}`, 0)));
        req.end(body);
      });
      if (res.status < 200 || res.status >= 300) {
        const { reason, message } = statusReason(res.text);
        throw new ApiError(`${what}: HTTP ${res.status} ${reason}: ${message}`, res.status, reason, res.text);
      }
      return (res.text === '' ? undefined : JSON.parse(res.text)) as T;
    },

    async watch(apiPath, onEvent, signal) {
      const { url, opts, client } = await open('GET', apiPath, {}, signal);
      const what = `watch ${apiPath}`;
      await new Promise<void>((resolve, reject) => {
        const fail = (err: Error) => (signal.aborted ? resolve() : reject(err instanceof ApiError ? err : new ApiError(`${what}: ${err.message}`, 0)));
        const req = client.request(url, opts, (res) => {
          res.setEncoding('utf8');
          if (res.statusCode !== 200) {
            let text = '';
            res.on('data', (chunk: string) => (text += chunk));
            res.on('end', () => {
              const { reason, message } = statusReason(text);
              fail(new ApiError(`${what}: HTTP ${res.statusCode} ${reason}: ${message}`, res.statusCode ?? 0, reason, text));
            });
            return;
          }
          let pending = '';
          res.on('data', (chunk: string) => {
            pending += chunk;
            let nl: number;
            while ((nl = pending.indexOf('\n')) >= 0) {
              const line = pending.slice(0, nl).trim();
              pending = pending.slice(nl + 1);
              if (line === '') continue;
              let event: WatchEvent;
              try {
                event = JSON.parse(line) as WatchEvent;
              } catch (err) {
                req.destroy(new Error(`undecodable event: ${(err as Error).message}: ${line.slice(0, 200)}`));
                return;
              }
              try {
                onEvent(event);
              } catch (err) {
                req.destroy(err as Error);
                return;
              }
            }
          });
          res.on('end', () => (res.complete ? resolve() : fail(new Error('stream cut before its end'))));
          res.on('error', fail);
        });
        req.on('error', fail);
        req.end();
      });
    },
  };
}
