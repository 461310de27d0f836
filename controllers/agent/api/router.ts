// Path routing for the agent API: upstream's swagger paths under /v1 with `{name}` segments. A path
// no route has is a 404; a path that exists under other methods is a 405 naming them.
import type { IncomingMessage, ServerResponse } from 'node:http';

export const API_BASE = '/v1';

/** A request as a handler sees it: path parameters decoded, query parsed, body read as text. */
export interface ApiRequest {
  method: string;
  /** Path below /v1, e.g. `/endpoint/42`. */
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  /** The raw body ('' when none). */
  body: string;
  /** Aborts when the client goes away or the server stops. */
  signal: AbortSignal;
  /** For streaming handlers, which write the answer themselves and resolve with `undefined`. */
  res: ServerResponse;
}

/** A JSON answer; `body` undefined sends no body. */
export interface ApiReply {
  status: number;
  body?: unknown;
}

export type ApiHandler = (req: ApiRequest) => Promise<ApiReply | undefined> | ApiReply | undefined;

interface Route {
  method: string;
  segments: string[];
  handler: ApiHandler;
}

export type RouteMatch =
  | { kind: 'found'; handler: ApiHandler; params: Record<string, string> }
  | { kind: 'no-path' }
  | { kind: 'no-method'; allowed: string[] };

function split(path: string): string[] {
  return path.split('/').filter((s) => s !== '');
}

/** `{id}` binds a segment; anything else must match literally. */
function bind(pattern: readonly string[], segments: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i] as string;
    const s = segments[i] as string;
    if (p.startsWith('{') && p.endsWith('}')) params[p.slice(1, -1)] = s;
    else if (p !== s) return undefined;
  }
  return params;
}

export class Router {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: ApiHandler): this {
    this.routes.push({ method: method.toUpperCase(), segments: split(pattern), handler });
    return this;
  }

  /**
   * The handler for `method` on `path` (below /v1, still percent-encoded: an encoded `/` inside
   * an id such as `pod-name:ns%2Fpod` stays in its segment). Literal routes win over
   * parameterised ones of the same length, as `/identity/endpoints` over `/identity/{id}`.
   */
  match(method: string, path: string): RouteMatch {
    const raw = split(path);
    let segments: string[];
    try {
      segments = raw.map((s) => decodeURIComponent(s));
    } catch {
      return { kind: 'no-path' };
    }
    const bound = this.routes
      .map((r) => ({ r, params: bind(r.segments, segments) }))
      .filter((b): b is { r: Route; params: Record<string, string> } => b.params !== undefined)
      .sort((a, b) => Object.keys(a.params).length - Object.keys(b.params).length);
    if (bound.length === 0) return { kind: 'no-path' };
    const fewest = Object.keys(bound[0]?.params ?? {}).length;
    const best = bound.filter((b) => Object.keys(b.params).length === fewest);
    const hit = best.find((b) => b.r.method === method.toUpperCase());
    if (hit) return { kind: 'found', handler: hit.r.handler, params: hit.params };
    // A parameterised route of another shape may still take this method (GET /identity/{id} vs
    // a literal path without GET): look beyond the most literal routes before refusing.
    const other = bound.find((b) => b.r.method === method.toUpperCase());
    if (other) return { kind: 'found', handler: other.r.handler, params: other.params };
    return { kind: 'no-method', allowed: [...new Set(bound.map((b) => b.r.method))].sort() };
  }
}
