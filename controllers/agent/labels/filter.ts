// Which labels make up a security identity (upstream pkg/labelsfilter). Labels that do not pass
// stay on the endpoint as information but never split pods into different identities: a
// pod-template-hash in the identity would give every rollout fresh identities and policy maps.
import { readFileSync } from 'node:fs';
import { LabelSet, SOURCE_RESERVED, type Label } from './labels.js';

/** One filter entry: `source:prefix`, `!` before the prefix to ignore instead of include. */
export interface LabelPrefix {
  /** Empty = any source. */
  source: string;
  prefix: string;
  ignore: boolean;
  /**
   * Entries from flags and defaults are regular expressions anchored at the key's start; entries
   * from a `--label-prefix-file` are plain key prefixes, as upstream reads them.
   */
  regex?: RegExp;
}

/** Upstream's `--label-prefix-file` format version. */
export const LABEL_PREFIX_FILE_VERSION = 1;

const RESERVED_PATTERN = `${SOURCE_RESERVED}:.*`;

/** Upstream's default list, in upstream's order. */
export const DEFAULT_LABEL_PREFIXES: readonly string[] = [
  RESERVED_PATTERN,
  String.raw`io\.kubernetes\.pod\.namespace`,
  String.raw`io\.cilium\.k8s\.namespace\.labels`,
  String.raw`app\.kubernetes\.io`,
  String.raw`io\.cilium\.k8s\.policy\.cluster`,
  String.raw`io\.cilium\.k8s\.policy\.serviceaccount`,
  String.raw`!io\.kubernetes`,
  String.raw`!kubernetes\.io`,
  String.raw`!statefulset\.kubernetes\.io/pod-name`,
  String.raw`!apps\.kubernetes\.io/pod-index`,
  String.raw`!batch\.kubernetes\.io/job-completion-index`,
  String.raw`!batch\.kubernetes\.io/controller-uid`,
  String.raw`!.*beta\.kubernetes\.io`,
  String.raw`!k8s\.io`,
  '!pod-template-generation',
  '!pod-template-hash',
  '!controller-revision-hash',
  '!controller-uid',
  '!annotation.*',
  '!etcd_node',
  String.raw`!topology\.kubernetes\.io`,
];

/**
 * Parses a `--labels` entry: `[source:][!]regex`. The source is what stands before the first
 * colon, so a pattern that needs a colon must carry an explicit (possibly empty) source.
 */
export function parseLabelPrefix(entry: string): LabelPrefix {
  const colon = entry.indexOf(':');
  const source = colon < 0 ? '' : entry.slice(0, colon);
  let prefix = colon < 0 ? entry : entry.slice(colon + 1);
  if (prefix === '') throw new Error(`label prefix ${JSON.stringify(entry)}: prefix is empty`);
  const ignore = prefix.startsWith('!');
  if (ignore) prefix = prefix.slice(1);
  let regex: RegExp;
  try {
    regex = new RegExp(prefix, 'u');
  } catch (err) {
    throw new Error(`label prefix ${JSON.stringify(entry)}: not a regular expression: ${(err as Error).message}`, { cause: err });
  }
  return { source, prefix, ignore, regex };
}

/** Length in UTF-8 bytes, as upstream compares match lengths. */
function byteLength(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Whether `p` matches the label, and how many bytes of its key the match covers. */
function matchLength(p: LabelPrefix, l: Label): number | undefined {
  if (p.source !== '' && p.source !== l.source) return undefined;
  if (p.regex === undefined) return l.key.startsWith(p.prefix) ? byteLength(p.prefix) : undefined;
  // The leftmost match must start at the key's first character (Go's FindStringIndex semantics).
  const m = p.regex.exec(l.key);
  if (m === null || m.index !== 0) return undefined;
  return byteLength(m[0]);
}

export class LabelFilter {
  /**
   * @param allowList only included labels pass. Upstream's defaults hold includes but are not an
   *   allow list (an unknown `app=web` passes); an include from `--labels` or a prefix file makes
   *   the list one.
   */
  constructor(
    readonly prefixes: readonly LabelPrefix[],
    readonly allowList: boolean,
  ) {}

  /**
   * Upstream's rule: a label passes when no include entry exists and no ignore entry matches, or
   * when the longest matching include covers more of the key than the shortest matching ignore
   * (so `app.kubernetes.io/name` passes although `kubernetes.io` is ignored; equal lengths do not
   * pass).
   */
  accepts(l: Label): boolean {
    let included = 0;
    let ignored = 0;
    for (const p of this.prefixes) {
      const len = matchLength(p, l);
      if (len === undefined) continue;
      if (p.ignore) {
        if (ignored === 0 || len < ignored) ignored = len;
      } else if (len > included) {
        included = len;
      }
    }
    return (!this.allowList && ignored === 0) || included > ignored;
  }

  /** Splits a set into identity-relevant labels and the rest (information labels). */
  filter(labels: LabelSet): { identity: LabelSet; information: LabelSet } {
    const identity: Label[] = [];
    const information: Label[] = [];
    for (const l of labels.labels()) (this.accepts(l) ? identity : information).push(l);
    return { identity: new LabelSet(identity), information: new LabelSet(information) };
  }
}

interface LabelPrefixFile {
  version?: unknown;
  'valid-prefixes'?: unknown;
}

/** Parses a `--label-prefix-file` body: `{"version":1,"valid-prefixes":[{prefix, source, invert}]}`. */
export function parseLabelPrefixFile(text: string, file = 'label prefix file'): LabelPrefix[] {
  let doc: LabelPrefixFile;
  try {
    doc = JSON.parse(text) as LabelPrefixFile;
  } catch (err) {
    throw new Error(`${file}: not JSON: ${(err as Error).message}`, { cause: err });
  }
  if (doc === null || typeof doc !== 'object') throw new Error(`${file}: must be a JSON object`);
  if (doc.version !== LABEL_PREFIX_FILE_VERSION) throw new Error(`${file}: version: unsupported version ${JSON.stringify(doc.version)}, want ${LABEL_PREFIX_FILE_VERSION}`);
  const entries = doc['valid-prefixes'] ?? [];
  if (!Array.isArray(entries)) throw new Error(`${file}: valid-prefixes: must be a list`);
  return entries.map((raw: unknown, i) => {
    const e = (raw ?? {}) as { prefix?: unknown; source?: unknown; invert?: unknown };
    const where = `${file}: valid-prefixes[${i}]`;
    if (typeof e.prefix !== 'string' || e.prefix === '') throw new Error(`${where}.prefix: must be a non-empty string`);
    if (typeof e.source !== 'string' || e.source === '') throw new Error(`${where}.source: must be a non-empty string`);
    if (e.invert !== undefined && typeof e.invert !== 'boolean') throw new Error(`${where}.invert: must be a boolean`);
    return { source: e.source, prefix: e.prefix, ignore: e.invert === true };
  });
}

export interface LabelFilterOptions {
  /** `--labels` entries, appended to the base list. */
  labels?: readonly string[];
  /** `--label-prefix-file`: replaces the default list. */
  labelPrefixFile?: string;
}

/**
 * The filter the agent runs with, plus warnings for its caller to log: upstream complains (but
 * carries on) when a custom file drops `reserved:.*`, since reserved identities then lose their
 * labels.
 */
export function buildLabelFilter(opts: LabelFilterOptions = {}): { filter: LabelFilter; warnings: string[] } {
  const fromFile = opts.labelPrefixFile === undefined ? undefined : parseLabelPrefixFile(readFileSync(opts.labelPrefixFile, 'utf8'), opts.labelPrefixFile);
  const extra = (opts.labels ?? []).filter((e) => e !== '').map(parseLabelPrefix);
  const prefixes = [...(fromFile ?? DEFAULT_LABEL_PREFIXES.map(parseLabelPrefix)), ...extra];
  const allowList = [...(fromFile ?? []), ...extra].some((p) => !p.ignore);
  const warnings: string[] = [];
  if (opts.labelPrefixFile !== undefined && !prefixes.some((p) => `${p.source}:${p.prefix}` === RESERVED_PATTERN)) {
    warnings.push(`'${RESERVED_PATTERN}' needs to be in the label prefix list for reserved identities to keep their labels`);
  }
  return { filter: new LabelFilter(prefixes, allowList), warnings };
}
