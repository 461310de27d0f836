// The commands that ask the agent's REST API: status, endpoint, identity, policy, ip, map.
import type { Command } from 'commander';
import { parseEndpointId } from '../../agent/api/endpoint-id.js';
import { CliError, OUTPUT_FLAG, wantsJson, type CliContext, type OutputFlags } from '../context.js';
import { formatEndpointList } from '../format/endpoints.js';
import { formatIdentities, sortIdentities } from '../format/identities.js';
import { formatIPList, sortIPList } from '../format/ip-list.js';
import { formatMapEntries, formatMapList, formatMapListVerbose } from '../format/maps-api.js';
import { formatPolicyGet, formatSelectors } from '../format/policy.js';
import { formatStatus, formatStatusBrief, statusUnhealthy } from '../format/status.js';
import type { BPFMapListModel, BPFMapModel, EndpointModel, IdentityModel, IPListEntryModel, PolicyModel, SelectorIdentityMappingModel, StatusResponseModel } from '../models.js';
import { IdentityLabels } from './identity-labels.js';

type Run = (ctx: CliContext, ...args: never[]) => void | Promise<void>;
export type Runner = (cmd: Command, run: Run) => Command;

function validEndpointId(id: string): string {
  try {
    parseEndpointId(id);
    return id;
  } catch (err) {
    throw new CliError(`Cannot parse endpoint id "${id}": ${(err as Error).message}`);
  }
}

export function addAgentApiCommands(program: Command, run: Runner): void {
  run(
    program
      .command('status')
      .description('Display status of daemon')
      .option('--verbose', 'all addresses and controllers, not only failing ones')
      .option('--brief', 'only a one-line status message')
      .option(...OUTPUT_FLAG),
    async (ctx: CliContext, opts: OutputFlags & { verbose?: boolean; brief?: boolean }) => {
      const json = wantsJson(opts);
      let sr: StatusResponseModel;
      try {
        sr = await ctx.client.request<StatusResponseModel>('GET', '/healthz', { headers: { brief: String(opts.brief ?? false) } });
      } catch (err) {
        throw new CliError(opts.brief ? 'cilium: daemon unreachable' : (err as Error).message, { cause: err });
      }
      if (json) return ctx.printJson(sr);
      if (opts.brief) ctx.io.stdout(formatStatusBrief(sr));
      else ctx.io.stdout(formatStatus(sr, { verbose: opts.verbose, now: ctx.io.now() }));
      if (statusUnhealthy(sr)) throw new CliError(`cilium agent is ${sr.cilium?.state ?? 'unknown'}: ${sr.cilium?.msg ?? ''}`);
    },
  );

  const endpoint = program.command('endpoint').description('Manage endpoints');
  run(
    endpoint.command('list').alias('ls').description('List all endpoints').option('--no-headers', 'do not print headers').option(...OUTPUT_FLAG),
    async (ctx: CliContext, opts: OutputFlags & { headers: boolean }) => {
      const json = wantsJson(opts);
      const eps = await ctx.get<EndpointModel[]>('cannot get endpoint list', '/endpoint');
      const sorted = [...eps].sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
      if (json) return ctx.printJson(sorted);
      ctx.io.stdout(formatEndpointList(sorted, { noHeaders: !opts.headers }));
    },
  );
  run(
    endpoint.command('get').argument('<id>', 'endpoint id, numeric or prefixed (pod-name:ns/pod, cni-attachment-id:..., ipv4:...)').description('Display endpoint information').option(...OUTPUT_FLAG),
    async (ctx: CliContext, id: string, opts: OutputFlags) => {
      wantsJson(opts);
      const ep = await ctx.get<EndpointModel>(`Cannot get endpoint ${id}`, `/endpoint/${encodeURIComponent(validEndpointId(id))}`);
      // Upstream prints JSON with or without -o json, as a list.
      ctx.printJson([ep]);
    },
  );

  const identity = program.command('identity').description('Manage security identities');
  run(identity.command('list').alias('ls').description('List identities').option(...OUTPUT_FLAG), async (ctx: CliContext, opts: OutputFlags) => {
    const json = wantsJson(opts);
    const ids = sortIdentities(await ctx.get<IdentityModel[]>('Cannot get identities', '/identity'));
    if (json) return ctx.printJson(ids);
    ctx.io.stdout(formatIdentities(ids));
  });
  run(identity.command('get').argument('<id>', 'numeric identity').description('Retrieve information about an identity').option(...OUTPUT_FLAG), async (ctx: CliContext, id: string, opts: OutputFlags) => {
    const json = wantsJson(opts);
    if (!/^\d+$/.test(id)) throw new CliError(`Cannot get identity for given ID ${id}: identity id must be a non-negative integer`);
    const found = await ctx.get<IdentityModel>(`Cannot get identity for given ID ${id}`, `/identity/${id}`);
    if (json) return ctx.printJson([found]);
    ctx.io.stdout(formatIdentities([found]));
  });

  const policy = program.command('policy').description('Manage security policies');
  run(policy.command('get').description('Display policy node information').option(...OUTPUT_FLAG), async (ctx: CliContext, opts: OutputFlags) => {
    const json = wantsJson(opts);
    const p = await ctx.get<PolicyModel>('Cannot get policy', '/policy');
    if (json) return ctx.printJson(p);
    ctx.io.stdout(formatPolicyGet(p));
  });
  run(
    policy.command('selectors').description('Display cached information about selectors').option('-v, --verbose', 'show the full labels').option(...OUTPUT_FLAG),
    async (ctx: CliContext, opts: OutputFlags & { verbose?: boolean }) => {
      const json = wantsJson(opts);
      const selectors = await ctx.get<SelectorIdentityMappingModel[]>('Cannot get policy', '/policy/selectors');
      if (json) return ctx.printJson(selectors);
      ctx.io.stdout(formatSelectors(selectors, { verbose: opts.verbose }));
    },
  );

  const ip = program.command('ip').description('Manage IP addresses and associated information');
  run(
    ip.command('list').alias('ls').description('List IP addresses in the userspace IPcache').option('-n, --numeric', 'print numeric identities').option('-v, --verbose', 'print all fields of ipcache').option(...OUTPUT_FLAG),
    async (ctx: CliContext, opts: OutputFlags & { numeric?: boolean; verbose?: boolean }) => {
      const json = wantsJson(opts);
      const entries = sortIPList(await ctx.get<IPListEntryModel[]>('Cannot get ipcache entries', '/ip'));
      if (json) return ctx.printJson(entries);
      const identities = new IdentityLabels(ctx, (id, reason) => `Cannot get identity for ID ${id}: ${reason}\n`);
      if (!opts.numeric) await identities.prefetch(entries.map((e) => e.identity ?? 0));
      ctx.io.stdout(formatIPList(entries, { numeric: opts.numeric, verbose: opts.verbose, labelsOf: identities.labelsOf }));
    },
  );

  const map = program.command('map').description('Access userspace cached content of BPF maps');
  run(map.command('list').description('List all open BPF maps').option('--verbose', 'print cache contents of all maps').option(...OUTPUT_FLAG), async (ctx: CliContext, opts: OutputFlags & { verbose?: boolean }) => {
    const json = wantsJson(opts);
    const list = await ctx.get<BPFMapListModel>('Cannot get map list', '/map');
    if (json) return ctx.printJson(list);
    ctx.io.stdout(opts.verbose ? formatMapListVerbose(list) : formatMapList(list));
  });
  run(map.command('get').argument('<name>', 'map name, e.g. cilium_lxc').description('Display cached content of given BPF map').option(...OUTPUT_FLAG), async (ctx: CliContext, name: string, opts: OutputFlags) => {
    const json = wantsJson(opts);
    const m = await ctx.get<BPFMapModel>(`Cannot get map ${name}`, `/map/${encodeURIComponent(name)}`);
    if (json) return ctx.printJson(m);
    ctx.io.stdout(formatMapEntries(m));
  });
}
