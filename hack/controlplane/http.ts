// A plain HTTP(S) request with the body read as text, for health probes and the few API calls
// (discovery, deletecollection, namespace finalize) that client-node has no generic method for.
import http from 'node:http';
import https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export interface HttpResult {
  status: number;
  body: string;
}

export interface HttpOptions extends https.RequestOptions {
  body?: string;
}

const timeoutMs = 10_000;

export function httpRequest(url: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const client = url.startsWith('https:') ? https : http;
  const { body, ...requestOptions } = opts;
  const method = requestOptions.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const req = client.request(url, { ...requestOptions, timeout: timeoutMs }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs / 1000}s`)));
    req.on('error', (err) => reject(new Error(`${method} ${url}: ${err.message}`)));
    req.end(body);
  });
}

// A request to the current cluster of kubeConfig, authenticated as its current user.
export async function apiRequest(kubeConfig: KubeConfig, apiPath: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const server = kubeConfig.getCurrentCluster()?.server;
  if (!server) throw new Error(`API ${apiPath}: kubeconfig has no current cluster`);
  const requestOptions: HttpOptions = { ...opts };
  await kubeConfig.applyToHTTPSOptions(requestOptions);
  return httpRequest(`${server}${apiPath}`, requestOptions);
}

export async function apiJson<T>(kubeConfig: KubeConfig, apiPath: string, opts: HttpOptions = {}): Promise<T> {
  const res = await apiRequest(kubeConfig, apiPath, opts);
  if (res.status < 200 || res.status >= 300) {
    throw new Error(`${opts.method ?? 'GET'} ${apiPath}: HTTP ${res.status}: ${res.body.slice(0, 500)}`);
  }
  return JSON.parse(res.body) as T;
}
