// A stand-in for the agent's REST API in unit tests: a unix-socket HTTP server answering fixed
// JSON per path (and an NDJSON /v1/monitor stream), so commands and their error paths run
// without an agent. The integration tests use the real AgentDaemon.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

export interface FixtureAnswer {
  status?: number;
  body: unknown;
}

export class FixtureAgent {
  readonly socketPath: string;
  readonly requests: string[] = [];
  private constructor(
    private readonly server: http.Server,
    private readonly dir: string,
  ) {
    this.socketPath = path.join(dir, 'cilium.sock');
  }

  /** `routes` maps "/v1/..." paths (query excluded) to answers; anything else is upstream's 404. */
  static async start(routes: Record<string, FixtureAnswer>, monitorEvents: readonly unknown[] = []): Promise<FixtureAgent> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cilium-cli-'));
    const server = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://agent');
      agent.requests.push(url.pathname);
      if (url.pathname === '/v1/monitor') {
        res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
        for (const ev of monitorEvents) res.write(`${JSON.stringify(ev)}\n`);
        res.end();
        return;
      }
      const answer = routes[url.pathname] ?? { status: 404, body: `${url.pathname} not found` };
      res.writeHead(answer.status ?? 200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
    const agent = new FixtureAgent(server, dir);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(agent.socketPath, resolve);
    });
    return agent;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
