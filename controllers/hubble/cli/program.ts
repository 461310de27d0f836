// Our `hubble` command line (upstream hubble/cmd): `observe` with upstream's selector, filter and
// formatting flags, `status` and `list nodes`, against a node's Hubble server or the relay.
// Errors print as one line on stderr and exit 1, as upstream's main does.
import { Command, CommanderError, Option } from 'commander';
import { type ServiceError, status as grpcStatus } from '@grpc/grpc-js';
import type { CliIO } from '../../cli/context.js';
import { OBSERVER_HEALTH_SERVICE } from '../health.js';
import { HubbleCliError, HubbleConnection, type ServerFlags } from './connection.js';
import { FILTER_FLAGS, FilterFlagError, type FlowFilterObject, FlowFilterFlags } from './filters.js';
import { FlowPrinter, type OutputFormat, type PrintedResponse } from './printer.js';
import { fromProtoJson, toProtoJson } from './protojson.js';
import { compileFilters } from '../filter.js';
import { type Flow, type FlowFilter, type Timestamp, timestampMs } from '../flow-types.js';
import { readFileSync } from 'node:fs';
import { goJson } from '../../cli/text/go-format.js';
import { nodesText, type NodeInfo, serverStatusText, type ServerStatusResponse } from './status.js';
import { parseTime, TIME_FORMATS, timeFormatOf } from './time.js';

/** Upstream's FlowPrintCount: flows a plain `hubble observe` prints. */
const FLOW_PRINT_COUNT = 20;
const ALL_FLOWS = '18446744073709551615';
/** Upstream defaults.FieldMask: what compact, dict and table print, all they ask the server for. */
export const DEFAULT_FIELD_MASK = [
  'time',
  'verdict',
  'ethernet',
  'IP',
  'l4',
  'source.identity',
  'source.namespace',
  'source.pod_name',
  'destination.identity',
  'destination.namespace',
  'destination.pod_name',
  'Type',
  'node_name',
  'l7',
  'event_type',
  'source_service',
  'destination_service',
  'is_reply',
  'Summary',
  'ip_trace_id',
  'traffic_direction',
  'policy_match_type',
  'ingress_allowed_by',
  'ingress_denied_by',
  'egress_allowed_by',
  'egress_denied_by',
];

// Filter flags with a shorthand, and those that need no value (pflag NoOptDefVal).
const SHORT: Readonly<Record<string, string>> = { type: 't', label: 'l', namespace: 'n', 'all-namespaces': 'A', ipv4: '4', ipv6: '6' };
const NO_VALUE: Readonly<Record<string, string>> = { not: 'true', encrypted: 'true', unencrypted: 'true', reply: 'true', 'not-reply': 'true', 'all-namespaces': 'true', 'from-all-namespaces': 'true', 'to-all-namespaces': 'true', ipv4: 'v4', ipv6: 'v6' };

interface ObserveFlags extends ServerFlags {
  last?: string;
  first?: string;
  all?: boolean;
  follow?: boolean;
  since?: string;
  until?: string;
  output: string;
  printNodeName?: boolean;
  printPolicyNames?: boolean;
  timeFormat: string;
  numeric?: boolean;
  ipTranslation: string;
  color: string;
  silentErrors?: boolean;
  printRawFilters?: boolean;
  fieldMask?: string[];
  useDefaultFieldMasks: string;
  allowlist: string[];
  denylist: string[];
  inputFile?: string;
  debug?: boolean;
}

function addServerFlags(cmd: Command): Command {
  return cmd
    .option('--server <address>', 'address of a Hubble server or relay: host:port or unix:///path (default "localhost:4245", env HUBBLE_SERVER)')
    .option('--timeout <duration>', 'how long to wait for the connection (default 5s)')
    .option('--request-timeout <duration>', 'how long a unary request may take (default 12s)')
    .option('-D, --debug', 'enable debug messages (also prints informational node status events)');
}

const collect = (v: string, prev: string[]) => [...prev, v];
const uint = (name: string) => (v: string) => {
  if (!/^[0-9]+$/.test(v) || BigInt(v) > BigInt(ALL_FLOWS)) throw new HubbleCliError(`invalid argument ${JSON.stringify(v)} for "--${name}" flag: strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`);
  return v;
};

/** pflag's name of a flag in its errors: "-n, --namespace" or "--from-pod". */
const flagLabel = (name: string) => (SHORT[name] ? `-${SHORT[name]}, --${name}` : `--${name}`);

function yamlList(key: string, items: readonly string[]): string {
  return items.length === 0 ? '' : `${key}:\n${items.map((i) => `    - '${i.replaceAll("'", "''")}'\n`).join('')}`;
}

export function buildHubbleProgram(io: CliIO, tty = false): Command {
  const program = new Command('hubble')
    .description('Hubble is a utility to observe and inspect recent Cilium routed traffic in a cluster')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });

  const observe = addServerFlags(new Command('observe')).description('Observe flows of a Hubble server');
  const filters = new FlowFilterFlags();
  for (const name of ['not', ...FILTER_FLAGS]) {
    const flags = `${SHORT[name] ? `-${SHORT[name]}, ` : ''}--${name}${NO_VALUE[name] ? '' : ' <value>'}`;
    observe.addOption(new Option(flags, `filter: ${name} (as upstream's hubble observe --${name})`).hideHelp(name !== 'not' && !['pod', 'from-pod', 'to-pod', 'ip', 'label', 'namespace', 'verdict', 'type', 'port', 'identity', 'protocol'].includes(name)));
    // Commander announces each option as it parses it, in command-line order, which --not needs.
    observe.on(`option:${name}`, (value: string | boolean | undefined) => {
      try {
        filters.set(name, typeof value === 'string' ? value : (NO_VALUE[name] ?? ''));
      } catch (err) {
        if (!(err instanceof FilterFlagError)) throw err;
        throw new HubbleCliError(`invalid argument ${JSON.stringify(typeof value === 'string' ? value : NO_VALUE[name])} for ${JSON.stringify(flagLabel(name))} flag: ${err.message}`);
      }
    });
  }
  observe
    .option('--last <n>', `get last N flows stored in Hubble's buffer (default ${FLOW_PRINT_COUNT}); against the relay N per node`, uint('last'))
    .option('--first <n>', "get first N flows stored in Hubble's buffer; against the relay N per node", uint('first'))
    .option('--all', "get all flows stored in Hubble's buffer")
    .option('-f, --follow', 'follow flows output')
    .option('--since <time>', 'flows since a time: a duration into the past (3s, 4m, 1h43m) or RFC 3339 and upstream\'s other layouts')
    .option('--until <time>', 'flows until a time (same formats as --since)')
    .option('-o, --output <format>', 'compact, dict, json (= jsonpb), jsonpb or table', 'compact')
    .option('--print-node-name', 'print node name in output')
    .option('--print-policy-names', 'print policy names in output')
    .option('--time-format <format>', `time format: ${TIME_FORMATS.join(', ')}`, 'StampMilli')
    .option('--numeric', 'display all information in numeric form')
    .option('--ip-translation <bool>', 'translate IP addresses to logical names such as pod name, FQDN, ...', 'true')
    .option('--color <when>', "colorize compact and dict output: 'auto', 'always' or 'never'", 'auto')
    .option('-s, --silent-errors', 'silently ignore errors and warnings')
    .option('--print-raw-filters', 'print allowlist/denylist filters and exit without sending the request')
    .option('--field-mask <fields>', 'comma-separated fields the server keeps in flows (json output only)', (v: string, prev: string[] = []) => [...prev, ...v.split(',')])
    .option('--use-default-field-masks <bool>', 'request only visible fields when the output format is compact, tab, or dict', 'true')
    .option('--input-file <file>', "query flows from this file (GetFlowsResponse JSON lines, as -o json writes them) instead of the server; '-' reads stdin")
    .option('--allowlist <filter>', 'allowlist as JSON encoded FlowFilters', collect, [])
    .option('--denylist <filter>', 'denylist as JSON encoded FlowFilters', collect, [])
    .action(async (opts: ObserveFlags) => observeFlows(io, opts, filters, tty));
  program.addCommand(observe);

  program.addCommand(
    addServerFlags(new Command('status'))
      .description('Display status of a Hubble server')
      .option('-o, --output <format>', 'compact, dict, json or table', 'compact')
      .action(async (opts: ServerFlags & { output: string }) => status(io, opts)),
  );
  const list = new Command('list').description('List Hubble objects');
  list.addCommand(
    addServerFlags(new Command('nodes'))
      .description('List Hubble nodes')
      .option('-o, --output <format>', 'json, table or wide', 'table')
      .action(async (opts: ServerFlags & { output: string }) => listNodes(io, opts)),
  );
  program.addCommand(list);
  return program;
}

function outputOf(output: string): OutputFormat {
  switch (output) {
    case 'compact':
    case 'dict':
      return output;
    case 'json':
    case 'JSON':
    case 'jsonpb':
      return 'jsonpb';
    case 'tab':
    case 'table':
      return 'table';
    default:
      throw new HubbleCliError(`invalid output format: ${output}`);
  }
}

function parseRawFilters(flag: string, values: readonly string[]): FlowFilterObject[] {
  const out: FlowFilterObject[] = [];
  for (const v of values) {
    // Upstream decodes a stream of JSON documents from each value.
    const docs = v.trim() === '' ? [] : v.trim().replace(/}\s*{/g, '}\n{').split('\n');
    for (const doc of docs) {
      try {
        out.push(JSON.parse(doc) as FlowFilterObject);
      } catch (err) {
        throw new HubbleCliError(`invalid --${flag} flag: failed to decode '${v}': ${(err as Error).message}`);
      }
    }
  }
  return out;
}

/** The GetFlowsRequest of observe's flags (upstream getFlowsRequest). */
export function flowsRequest(opts: ObserveFlags, filters: FlowFilterFlags, nowMs: number): Record<string, unknown> {
  const first = opts.first !== undefined && opts.first !== '0';
  const last = opts.last !== undefined && opts.last !== '0';
  if (first && last) throw new HubbleCliError('cannot set both --first and --last');
  if (first && opts.all) throw new HubbleCliError('cannot set both --first and --all');
  if (first && opts.follow) throw new HubbleCliError('cannot set both --first and --follow');
  if (last && opts.all) throw new HubbleCliError('cannot set both --last and --all');
  const time = (what: string, v: string) => {
    try {
      return parseTime(v, nowMs);
    } catch (err) {
      throw new HubbleCliError(`failed to parse the ${what} time: ${(err as Error).message}`);
    }
  };
  const since = opts.since !== undefined && opts.since !== '' ? time('since', opts.since) : undefined;
  const until = opts.until !== undefined && opts.until !== '' && !opts.follow ? time('until', opts.until) : undefined;
  let number = last ? opts.last! : '0';
  if (since === undefined && until === undefined && !first) {
    if (opts.all) number = ALL_FLOWS;
    else if (!last && !opts.follow && opts.inputFile === undefined) number = String(FLOW_PRINT_COUNT);
  }
  if (first) number = opts.first!;
  let lists: ReturnType<FlowFilterFlags['filters']>;
  try {
    lists = filters.filters();
  } catch (err) {
    throw err instanceof FilterFlagError ? new HubbleCliError(err.message) : err;
  }
  const { whitelist, blacklist } = lists;
  return {
    number,
    follow: opts.follow ?? false,
    whitelist: [...whitelist, ...parseRawFilters('allowlist', opts.allowlist)],
    blacklist: [...blacklist, ...parseRawFilters('denylist', opts.denylist)],
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    first,
  };
}

function grpcMessage(err: unknown): string {
  const e = err as Partial<ServiceError>;
  return e.details !== undefined && e.details !== '' ? e.details : (err as Error).message;
}

async function observeFlows(io: CliIO, opts: ObserveFlags, filters: FlowFilterFlags, tty: boolean): Promise<void> {
  const output = outputOf(opts.output);
  if (output === 'table' && opts.follow) throw new HubbleCliError('table output format is not compatible with follow mode');
  const fieldMask = opts.fieldMask ?? [];
  if (output !== 'jsonpb' && fieldMask.length > 0) throw new HubbleCliError(`${opts.output} output format is not compatible with custom field mask`);
  const mask = output !== 'jsonpb' && opts.useDefaultFieldMasks !== 'false' ? DEFAULT_FIELD_MASK : fieldMask;
  const req = flowsRequest(opts, filters, io.now().getTime());
  if (opts.printRawFilters) {
    const json = (list: unknown) => (list as FlowFilterObject[]).map((f) => goJson(toProtoJson('flow.FlowFilter', f)));
    const text = yamlList('allowlist', json(req.whitelist)) + yamlList('denylist', json(req.blacklist));
    io.stdout(text === '' ? '{}\n' : text);
    return;
  }
  if (mask.length > 0) req.field_mask = { paths: mask };
  const printer = new FlowPrinter({
    output,
    timeFormat: timeFormatOf(opts.timeFormat),
    // fatih/color's auto: a terminal that is not dumb, and no NO_COLOR.
    color: opts.color === 'always' || (opts.color === 'auto' && tty && io.env.TERM !== 'dumb' && io.env.NO_COLOR === undefined),
    ipTranslation: !opts.numeric && opts.ipTranslation !== 'false',
    nodeName: opts.printNodeName ?? false,
    policyNames: opts.printPolicyNames ?? false,
    debug: opts.debug ?? false,
    silentErrors: opts.silentErrors ?? false,
    stdout: (t) => io.stdout(t),
    stderr: (t) => io.stderr(t),
  });
  if (opts.inputFile !== undefined) {
    for (const res of readFlowsFile(opts.inputFile, req)) printer.write(res);
    return printer.close();
  }
  const conn = new HubbleConnection(opts, io.env);
  try {
    await conn.ready();
    await new Promise<void>((resolve, reject) => {
      const call = conn.getFlows<PrintedResponse>(req);
      const onAbort = () => call.cancel();
      io.signal?.addEventListener('abort', onAbort, { once: true });
      call.on('data', (res: PrintedResponse) => printer.write(res));
      call.on('end', resolve);
      call.on('error', (err: ServiceError) => (err.code === grpcStatus.CANCELLED ? resolve() : reject(new HubbleCliError(grpcMessage(err)))));
    });
  } finally {
    printer.close();
    conn.close();
  }
}

/** Upstream's io reader observer: the file's responses with the request's time range, filters and number applied. */
function readFlowsFile(file: string, req: Record<string, unknown>): PrintedResponse[] {
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new HubbleCliError(`failed to open ${file}: ${(err as Error).message}`);
  }
  const matches = compileFilters(req.whitelist as Partial<FlowFilter>[], req.blacklist as Partial<FlowFilter>[]);
  const since = req.since ? timestampMs(req.since as Timestamp) : -Infinity;
  const until = req.until ? timestampMs(req.until as Timestamp) : Infinity;
  const out: PrintedResponse[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const res = fromProtoJson('observer.GetFlowsResponse', JSON.parse(line) as Record<string, unknown>) as unknown as PrintedResponse;
    const at = res.time ? timestampMs(res.time) : 0;
    if (at < since || at > until) continue;
    if (res.flow ? !matches(res.flow as unknown as Flow) : (req.whitelist as unknown[]).length > 0) continue;
    out.push(res);
  }
  const number = BigInt(req.number as string);
  if (number === 0n || number === BigInt(ALL_FLOWS)) return out;
  return req.first ? out.slice(0, Number(number)) : out.slice(-Number(number));
}

async function status(io: CliIO, opts: ServerFlags & { output: string }): Promise<void> {
  const output = outputOf(opts.output);
  const conn = new HubbleConnection(opts, io.env);
  try {
    const health = await conn.unary<{ status: string }>(conn.health, 'Check', { service: OBSERVER_HEALTH_SERVICE }).catch((err: unknown) => {
      throw new HubbleCliError(`failed getting status: ${grpcMessage(err)}`);
    });
    const ok = health.status === 'SERVING';
    if (output === 'compact') io.stdout(`Healthcheck (via ${conn.target}): ${ok ? 'Ok' : `Unavailable: ${health.status}`}\n`);
    if (!ok) throw new HubbleCliError('not healthy');
    const res = await conn.unary<ServerStatusResponse>(conn.observer, 'ServerStatus').catch((err: unknown) => {
      throw new HubbleCliError(`failed to get hubble server status: ${grpcMessage(err)}`);
    });
    io.stdout(serverStatusText(res, output));
  } finally {
    conn.close();
  }
}

async function listNodes(io: CliIO, opts: ServerFlags & { output: string }): Promise<void> {
  if (!['json', 'table', 'wide'].includes(opts.output)) throw new HubbleCliError(`unknown output format: ${opts.output}`);
  const conn = new HubbleConnection(opts, io.env);
  try {
    const res = await conn.unary<{ nodes: NodeInfo[] }>(conn.observer, 'GetNodes').catch((err: unknown) => {
      throw new HubbleCliError(grpcMessage(err));
    });
    io.stdout(nodesText(res.nodes, opts.output as 'json' | 'table' | 'wide'));
  } finally {
    conn.close();
  }
}

/** Runs one `hubble` command line (arguments after the program name); resolves to the exit code. `tty`: stdout is a terminal. */
export async function runHubble(argv: readonly string[], io: CliIO, tty = false): Promise<number> {
  try {
    await buildHubbleProgram(io, tty).parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (err instanceof HubbleCliError) {
      io.stderr(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
