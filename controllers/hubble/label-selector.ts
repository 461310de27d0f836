// Kubernetes label selector strings (`app=x,tier in (a,b),!canary`) over Hubble's endpoint labels
// (`source:key=value`), as upstream's flow filters read them: a key without a source matches any
// source (`app` is `any:app`), `k8s:app` only the k8s one.
import { type Label, parseLabel, SOURCE_ANY } from '../agent/labels/labels.js';

type Operator = '=' | '!=' | 'in' | 'notin' | 'exists' | '!' | 'gt' | 'lt';

interface Requirement {
  source: string;
  key: string;
  op: Operator;
  values: string[];
}

export class LabelSelectorError extends Error {
  constructor(selector: string, reason: string) {
    super(`label selector ${JSON.stringify(selector)}: ${reason}`);
    this.name = 'LabelSelectorError';
  }
}

// Commas inside a value set do not separate requirements.
function splitRequirements(selector: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(selector.slice(start));
  return parts.map((p) => p.trim());
}

function sourceAndKey(text: string): { source: string; key: string } {
  const colon = text.indexOf(':');
  return colon < 0 ? { source: SOURCE_ANY, key: text } : { source: text.slice(0, colon), key: text.slice(colon + 1) };
}

const KEY = String.raw`[A-Za-z0-9_.:/-]+`;
const VALUE = String.raw`[A-Za-z0-9_.-]*`;
const SET_RE = new RegExp(String.raw`^(${KEY})\s+(in|notin)\s*\(([^)]*)\)$`);
const CMP_RE = new RegExp(String.raw`^(${KEY})\s*(==|=|!=|>|<)\s*(${VALUE})$`);
const EXISTS_RE = new RegExp(String.raw`^(!?)\s*(${KEY})$`);

function parseRequirement(selector: string, text: string): Requirement {
  let m = SET_RE.exec(text);
  if (m) {
    const values = m[3]!.split(',').map((v) => v.trim());
    if (values.some((v) => !new RegExp(`^${VALUE}$`).test(v))) throw new LabelSelectorError(selector, `bad value in ${JSON.stringify(text)}`);
    return { ...sourceAndKey(m[1]!), op: m[2] as 'in' | 'notin', values };
  }
  m = CMP_RE.exec(text);
  if (m) {
    const ops: Record<string, Operator> = { '=': '=', '==': '=', '!=': '!=', '>': 'gt', '<': 'lt' };
    const op = ops[m[2]!]!;
    if ((op === 'gt' || op === 'lt') && !/^-?[0-9]+$/.test(m[3]!)) throw new LabelSelectorError(selector, `${JSON.stringify(text)}: ${m[2]} needs an integer`);
    return { ...sourceAndKey(m[1]!), op, values: [m[3]!] };
  }
  m = EXISTS_RE.exec(text);
  if (m) return { ...sourceAndKey(m[2]!), op: m[1] === '!' ? '!' : 'exists', values: [] };
  throw new LabelSelectorError(selector, `cannot parse ${JSON.stringify(text)}`);
}

/** Compiled selector; an empty string selects everything, as in Kubernetes. */
export class LabelSelector {
  private readonly requirements: Requirement[];

  constructor(readonly text: string) {
    this.requirements = text.trim() === '' ? [] : splitRequirements(text).map((r) => parseRequirement(text, r));
  }

  /** Whether labels (`source:key=value` strings) satisfy every requirement. */
  matches(labels: readonly string[]): boolean {
    const parsed = labels.map(parseLabel);
    return this.requirements.every((r) => holds(r, lookup(parsed, r)));
  }
}

function lookup(labels: readonly Label[], r: Requirement): string | undefined {
  return labels.find((l) => l.key === r.key && (r.source === SOURCE_ANY || l.source === r.source))?.value;
}

function holds(r: Requirement, value: string | undefined): boolean {
  switch (r.op) {
    case 'exists':
      return value !== undefined;
    case '!':
      return value === undefined;
    case '=':
      return value === r.values[0];
    case '!=':
      return value !== r.values[0];
    case 'in':
      return value !== undefined && r.values.includes(value);
    case 'notin':
      return value === undefined || !r.values.includes(value);
    case 'gt':
    case 'lt': {
      if (value === undefined || !/^-?[0-9]+$/.test(value)) return false;
      return r.op === 'gt' ? Number(value) > Number(r.values[0]) : Number(value) < Number(r.values[0]);
    }
  }
}
