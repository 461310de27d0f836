// The `bpf` commands: the datapath's pinned maps read directly, so they work with the agent down.
// Only `bpf policy get` without -n asks the agent, for the labels of peer identities.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { readAllPolicyMaps, readConntrack, readEndpoints, readIpcache, readMetrics, readPolicyMap, policyMapPath, PinnedMapError } from '../../../datapath/linux/pinned-maps.js';
import { CliError, OUTPUT_FLAG, wantsJson, type CliContext, type OutputFlags } from '../context.js';
import { ctRowsJson, dumpJson, endpointDump, formatAllPolicyTables, formatConntrack, formatKeyValueTable, formatMetrics, formatPolicyTable, ipcacheDump, metricsJson, policyRowsJson, type PolicyTableOptions } from '../format/bpf.js';
import type { Runner } from './agent-api.js';
import { IdentityLabels } from './identity-labels.js';

// A pinned map that cannot be read ends the command with its path and the reason.
function readPinned<T>(read: () => T): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof PinnedMapError) throw new CliError(err.message, { cause: err });
    throw err;
  }
}

// Endpoint ids are u16 (upstream parses the argument with ParseUint(.., 10, 16)).
function endpointIdArg(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 0xffff) throw new CliError(`Failed to parse endpointID ${JSON.stringify(text)}: expected a numeric endpoint id 0..65535`);
  return Number(text);
}

async function policyTableOptions(ctx: CliContext, numeric: boolean, identities: Iterable<number>): Promise<PolicyTableOptions> {
  if (numeric) return { numeric };
  const labels = new IdentityLabels(ctx, (id, reason) => `Was impossible to retrieve label ID ${id}: ${reason}\n`);
  await labels.prefetch(identities);
  return { numeric, labelsOf: labels.labelsOf };
}

export function addBpfCommands(program: Command, run: Runner): void {
  const bpf = program.command('bpf').description('Direct access to local BPF maps (pin directory: --bpf-pin-dir)');

  run(bpf.command('endpoint').description('Local endpoint map').command('list').alias('ls').description('List local endpoint entries').option(...OUTPUT_FLAG), (ctx: CliContext, opts: OutputFlags) => {
    const json = wantsJson(opts);
    const dump = endpointDump(readPinned(() => readEndpoints(ctx.target.pinDir)));
    if (json) return ctx.printJson(dumpJson(dump));
    ctx.io.stdout(formatKeyValueTable('IP ADDRESS', 'LOCAL ENDPOINT INFO', dump));
  });

  run(
    bpf.command('ipcache').description('Manage the IPCache mappings for IP/CIDR <-> Identity').command('list').alias('ls').description('List endpoint IPs (local and remote) and their corresponding security identities').option(...OUTPUT_FLAG),
    (ctx: CliContext, opts: OutputFlags) => {
      const json = wantsJson(opts);
      const dump = ipcacheDump(readPinned(() => readIpcache(ctx.target.pinDir)));
      if (json) return ctx.printJson(dumpJson(dump));
      if (dump.size === 0) ctx.io.stderr('No entries found.\n');
      else ctx.io.stdout(formatKeyValueTable('IP PREFIX/ADDRESS', 'IDENTITY', dump));
    },
  );

  run(
    bpf
      .command('policy')
      .description('Manage policy related BPF maps')
      .command('get')
      .argument('[endpoint]', 'endpoint id')
      .description('Get contents of a policy BPF map')
      .option('-n, --numeric', 'do not resolve IDs')
      .option('--all', 'dump all policy maps')
      .option(...OUTPUT_FLAG),
    async (ctx: CliContext, endpoint: string | undefined, opts: OutputFlags & { numeric?: boolean; all?: boolean }) => {
      const json = wantsJson(opts);
      const pinDir = ctx.target.pinDir;
      if (opts.all) {
        const maps = readPinned(() => readAllPolicyMaps(pinDir));
        if (json) return ctx.printJson(maps.map((m) => ({ EndpointID: String(m.endpointId), Path: m.path, Content: policyRowsJson(m.entries) })));
        const tableOpts = await policyTableOptions(ctx, opts.numeric ?? false, maps.flatMap((m) => m.entries.map((e) => e.key.identity)));
        return ctx.io.stdout(formatAllPolicyTables(maps, tableOpts));
      }
      if (endpoint === undefined) throw new CliError('bpf policy get: missing endpoint id argument (or --all)');
      const id = endpointIdArg(endpoint);
      if (!existsSync(policyMapPath(pinDir, id))) throw new CliError(`bpf policy get ${endpoint}: endpoint ${id} has no policy map at ${policyMapPath(pinDir, id)}`);
      const map = readPinned(() => readPolicyMap(pinDir, id));
      if (json) return ctx.printJson(policyRowsJson(map.entries));
      ctx.io.stdout(formatPolicyTable(map.entries, await policyTableOptions(ctx, opts.numeric ?? false, map.entries.map((e) => e.key.identity))));
    },
  );

  run(
    bpf.command('ct').description('Connection tracking tables').command('list').argument('[type]', 'global (the only table type here)', 'global').description('List connection tracking entries').option(...OUTPUT_FLAG),
    (ctx: CliContext, type: string, opts: OutputFlags) => {
      const json = wantsJson(opts);
      if (type !== 'global') throw new CliError(`bpf ct list ${type}: unknown type ${type} (this datapath has only the global tables)`);
      const maps = readPinned(() => readConntrack(ctx.target.pinDir));
      if (json) return ctx.printJson(ctRowsJson(maps));
      ctx.io.stdout(formatConntrack(maps));
    },
  );

  run(bpf.command('metrics').description('BPF datapath traffic metrics').command('list').description('List BPF datapath traffic metrics').option(...OUTPUT_FLAG), (ctx: CliContext, opts: OutputFlags) => {
    const json = wantsJson(opts);
    const rows = readPinned(() => readMetrics(ctx.target.pinDir));
    if (rows.length === 0) return ctx.io.stderr('No entries found.\n');
    if (json) return ctx.printJson(metricsJson(rows));
    ctx.io.stdout(formatMetrics(rows));
  });
}
