// A real Prometheus (Debian's /usr/bin/prometheus) for tests: its own config and data directory,
// scraping the given targets every second on a free loopback port; PromQL over its HTTP API.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from '../../../hack/controlplane/ports.js';
import { awaitFirstAnswer, type ChildSet } from '../../datapath/children.js';

export const PROMETHEUS = '/usr/bin/prometheus';
const READY_MS = 30_000;

export interface PromSample {
  metric: Record<string, string>;
  value: number;
}

export class Prometheus {
  private constructor(
    readonly url: string,
    private readonly dir: string,
    private readonly stopChild: () => Promise<void>,
  ) {}

  /** Starts Prometheus scraping `targets` (host:port, path /metrics) every second, once it answers ready. */
  static async start(targets: readonly string[], children: ChildSet): Promise<Prometheus> {
    const dir = mkdtempSync(path.join(tmpdir(), 'prometheus-'));
    try {
      const [port] = await freePorts(1);
      const config = path.join(dir, 'prometheus.yml');
      writeFileSync(config, `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: hubble\n    static_configs:\n      - targets: [${targets.map((t) => JSON.stringify(t)).join(', ')}]\n`);
      const child = children.add(
        spawn(PROMETHEUS, [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] }),
      );
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const url = `http://127.0.0.1:${port}`;
      const ready = (async () => {
        for (;;) {
          const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
          if (ok) return;
          await sleep(100);
        }
      })();
      await awaitFirstAnswer(child, 'prometheus', ready, READY_MS, () => stderr);
      return new Prometheus(url, dir, async () => {
        const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
        await exited;
      });
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** An instant PromQL query's vector. */
  async query(promql: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
    if (body.status !== 'success' || body.data?.resultType !== 'vector') throw new Error(`prometheus query ${promql}: ${body.error ?? JSON.stringify(body)}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** The health of each scrape target (up is 1 once it was scraped). */
  async targetsUp(): Promise<number[]> {
    return (await this.query('up')).map((s) => s.value);
  }

  async stop(): Promise<void> {
    try {
      await this.stopChild();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
