// `cilium monitor`: the agent's datapath event stream (GET /v1/monitor, NDJSON) printed as
// upstream's monitor prints drop, trace and policy-verdict notifications.
import type { Command } from 'commander';
import { CliError, agentErrorText, OUTPUT_FLAG, wantsJson, type CliContext, type OutputFlags } from '../context.js';
import { formatMonitorJson, formatMonitorLine, matchesFilter, MONITOR_TYPES, type MonitorEvent } from '../format/monitor.js';
import type { StatusResponseModel } from '../models.js';
import type { Runner } from './agent-api.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function endpointIds(values: readonly string[]): number[] {
  return values.map((v) => {
    if (!/^\d+$/.test(v) || Number(v) > 0xffff) throw new CliError(`--related-to ${JSON.stringify(v)}: expected a numeric endpoint id 0..65535`);
    return Number(v);
  });
}

function eventTypes(values: readonly string[]): string[] {
  for (const t of values) {
    if (!(MONITOR_TYPES as readonly string[]).includes(t)) throw new CliError(`-t/--type ${JSON.stringify(t)}: unknown type, use one of [${MONITOR_TYPES.join(' ')}]`);
  }
  return [...values];
}

interface MonitorFlags extends OutputFlags {
  type: string[];
  relatedTo: string[];
  verbose?: boolean[];
  numeric?: boolean;
  json?: boolean;
}

async function banner(ctx: CliContext): Promise<void> {
  try {
    const sr = await ctx.client.request<StatusResponseModel>('GET', '/healthz');
    const nm = sr.nodeMonitor;
    if (nm) ctx.io.stderr(`Listening for events on ${nm.cpus ?? 0} CPUs with ${nm.npages ?? 0}x${nm.pagesize ?? 0} of shared memory\n`);
  } catch {
    // Upstream prints the line only when the agent answers; the stream below reports the failure.
  }
  ctx.io.stderr('Press Ctrl-C to quit\n');
}

export function addMonitorCommand(program: Command, run: Runner): void {
  run(
    program
      .command('monitor')
      .description('Display BPF program events')
      .option('-t, --type <type>', `filter by event type (${MONITOR_TYPES.join(', ')}); repeatable`, collect, [])
      .option('--related-to <id>', 'filter by source or destination endpoint id; repeatable', collect, [])
      .option('-v, --verbose', 'verbose output (the same lines for these event types)', (_v: string, prev: boolean[] = []) => [...prev, true])
      .option('-n, --numeric', 'display all security identities as numeric values')
      .option('-j, --json', 'JSON output, one object per line')
      .option(...OUTPUT_FLAG),
    async (ctx: CliContext, opts: MonitorFlags) => {
      const json = wantsJson(opts) || (opts.json ?? false);
      const filter = { types: eventTypes(opts.type), relatedTo: endpointIds(opts.relatedTo) };
      await banner(ctx);
      try {
        for await (const ev of await ctx.client.stream<MonitorEvent>('/monitor', ctx.io.signal)) {
          if (!matchesFilter(ev, filter)) continue;
          ctx.io.stdout(json ? formatMonitorJson(ev, { numeric: opts.numeric }) : formatMonitorLine(ev, { numeric: opts.numeric }));
        }
      } catch (err) {
        if (!ctx.io.signal?.aborted) throw new CliError(`Cannot read the agent's monitor stream: ${agentErrorText(err)}`, { cause: err });
      }
      if (ctx.io.signal?.aborted) ctx.io.stderr('\nReceived an interrupt, disconnecting from monitor...\n\n');
    },
  );
}
