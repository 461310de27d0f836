// One way to read every tunable of a component: each option has upstream's name, a type, a
// default and a check, and its value comes from the first of: command-line flag, environment
// (CILIUM_<NAME> in upper snake case, plus any alias upstream reads), configuration (a
// --config-dir directory with one file per option, as a mounted ConfigMap gives it, over a
// --config YAML file), default.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import YAML from 'yaml';
import { formatDuration, parseDuration } from './duration.js';

interface Common {
  description: string;
  /** Environment variables read besides CILIUM_<NAME>, in order. */
  env?: readonly string[];
}
export type OptionSpec =
  | (Common & { kind: 'string'; default?: string; choices?: readonly string[]; supported?: readonly string[]; check?: (v: string) => string | undefined })
  | (Common & { kind: 'int'; default: number; min: number; max: number })
  | (Common & { kind: 'duration'; default: number; allowZero?: boolean })
  | (Common & { kind: 'list'; default: readonly string[] });

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

type ValueOf<S extends OptionSpec> = S extends { kind: 'int' | 'duration' }
  ? number
  : S extends { kind: 'list' }
    ? string[]
    : S extends { default: string }
      ? string
      : string | undefined;

/** Option name → value; durations in milliseconds. */
export type ConfigOf<S extends OptionSpecs> = { -readonly [K in keyof S]: ValueOf<S[K]> };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The options every component reads its configuration sources from. */
const SOURCE_OPTIONS = {
  'config-dir': 'directory with one file per option, named as the option (a mounted ConfigMap)',
  config: 'YAML file of option: value',
} as const;

export function envName(option: string): string {
  return `CILIUM_${option.toUpperCase().replaceAll('-', '_')}`;
}

/** Upstream's rule for cluster names: DNS-label-like, at most 32 characters. */
export function checkClusterName(v: string): string | undefined {
  return /^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$/.test(v) ? undefined : `${JSON.stringify(v)} must be 1-32 lower-case letters, digits or '-', starting and ending with a letter or digit`;
}

/** Host:port listen address; empty disables. */
export function checkListenAddress(v: string): string | undefined {
  if (v === '') return undefined;
  const m = /^(.*):([0-9]+)$/.exec(v);
  if (m === null || Number(m[2]) > 65535) return `${JSON.stringify(v)} is not host:port with a port in 0..65535`;
  return undefined;
}

/** Splits a list value as upstream does for both comma-separated flags and space-separated ConfigMap values. */
function splitList(v: string): string[] {
  return v.split(/[\s,]+/).filter((s) => s !== '');
}

function convert(name: string, spec: OptionSpec, raw: string | string[], from: string): unknown {
  const fail = (reason: string) => new ConfigError(`option --${name} (from ${from}): ${reason}`);
  const text = Array.isArray(raw) ? raw.join(',') : raw;
  switch (spec.kind) {
    case 'list':
      return (Array.isArray(raw) ? raw : [raw]).flatMap(splitList);
    case 'int': {
      const t = text.trim();
      const n = /^-?[0-9]+$/.test(t) ? Number(t) : NaN;
      if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) throw fail(`${JSON.stringify(text)} is not an integer in ${spec.min}..${spec.max}`);
      return n;
    }
    case 'duration': {
      let ms: number;
      try {
        ms = parseDuration(text);
      } catch (err) {
        throw fail((err as Error).message);
      }
      if (ms < 0 || (ms === 0 && spec.allowZero !== true)) throw fail(`${JSON.stringify(text)} must be ${spec.allowZero === true ? 'zero or positive' : 'positive'}`);
      return ms;
    }
    case 'string': {
      if (spec.choices !== undefined && !spec.choices.includes(text)) throw fail(`${JSON.stringify(text)} is not one of ${spec.choices.join(', ')}`);
      if (spec.supported !== undefined && !spec.supported.includes(text)) {
        throw fail(`${JSON.stringify(text)} is not supported by cilium-ts; use ${spec.supported.join(' or ')}`);
      }
      const reason = spec.check?.(text);
      if (reason !== undefined) throw fail(reason);
      return text;
    }
  }
}

function describeDefault(spec: OptionSpec): string | undefined {
  switch (spec.kind) {
    case 'duration':
      return formatDuration(spec.default);
    case 'list':
      return spec.default.join(',');
    case 'int':
      return String(spec.default);
    case 'string':
      return spec.default;
  }
}

/** A commander program for `specs`, for parsing and for --help. */
export function buildCommand(program: string, specs: OptionSpecs): Command {
  const cmd = new Command(program).exitOverride().allowExcessArguments(false);
  cmd.configureOutput({ writeErr: () => undefined });
  for (const [name, d] of Object.entries(SOURCE_OPTIONS)) cmd.addOption(new Option(`--${name} <path>`, d));
  for (const [name, spec] of Object.entries(specs)) {
    const env = [envName(name), ...(spec.env ?? [])].join(', ');
    const def = describeDefault(spec);
    const o = new Option(`--${name} <value>`, `${spec.description} (env ${env}${def === undefined || def === '' ? '' : `; default ${def}`})`);
    if (spec.kind === 'list') o.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(o);
  }
  return cmd;
}

/** Raw values from a ConfigMap-style directory: file name → trimmed content; subdirectories (and links to them) skipped. */
function readConfigDir(dir: string): Record<string, string> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`option --config-dir: ${dir}: ${(err as Error).message}`);
  }
  const out: Record<string, string> = {};
  for (const name of names) {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) continue;
    out[name] = readFileSync(file, 'utf8').trim();
  }
  return out;
}

function readConfigFile(file: string): Record<string, string | string[]> {
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`option --config: ${file}: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`option --config: ${file}: must be a YAML mapping of option: value`);
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    else if (Array.isArray(v) && v.every((e) => typeof e === 'string' || typeof e === 'number')) out[k] = v.map(String);
    else throw new ConfigError(`option --config: ${file}: ${k}: must be a scalar or a list of scalars`);
  }
  return out;
}

/** Bad command lines become ConfigErrors; --help (a CommanderError with exit code 0) passes through for the entry point to exit on. */
function cliError(err: unknown): never {
  if (err instanceof CommanderError && err.exitCode !== 0) throw new ConfigError(err.message.replace(/^error: /, ''));
  throw err;
}

/**
 * Reads `specs` from `argv` (arguments after the program name), `env` and the files they name.
 * Keys in the files that are not options of this component are ignored: one ConfigMap serves the
 * agent and the operator.
 */
export function loadConfig<S extends OptionSpecs>(program: string, specs: S, argv: readonly string[], env: NodeJS.ProcessEnv): ConfigOf<S> {
  const cmd = buildCommand(program, specs);
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (err) {
    cliError(err);
  }
  const flags = cmd.opts<Record<string, string | string[] | undefined>>();
  const flag = (name: string) => flags[new Option(`--${name} <v>`).attributeName()];
  const source = (name: keyof typeof SOURCE_OPTIONS) => (flag(name) as string | undefined) ?? env[envName(name)];
  const configFile = source('config');
  const configDir = source('config-dir');
  const fromFiles = new Map<string, { raw: string | string[]; from: string }>();
  if (configFile !== undefined) for (const [k, raw] of Object.entries(readConfigFile(configFile))) fromFiles.set(k, { raw, from: `--config ${configFile}` });
  if (configDir !== undefined) for (const [k, raw] of Object.entries(readConfigDir(configDir))) fromFiles.set(k, { raw, from: `--config-dir ${path.join(configDir, k)}` });

  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const viaFlag = flag(name);
    const envKey = [envName(name), ...(spec.env ?? [])].find((k) => env[k] !== undefined && env[k] !== '');
    if (viaFlag !== undefined) out[name] = convert(name, spec, viaFlag, 'flag');
    else if (envKey !== undefined) out[name] = convert(name, spec, env[envKey] ?? '', `env ${envKey}`);
    else if (fromFiles.has(name)) {
      const f = fromFiles.get(name) as { raw: string | string[]; from: string };
      out[name] = convert(name, spec, f.raw, f.from);
    }
    else out[name] = spec.kind === 'list' ? [...spec.default] : spec.default;
  }
  return out as ConfigOf<S>;
}
