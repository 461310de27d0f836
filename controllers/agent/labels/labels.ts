// Security labels as upstream writes them: `source:key=value` (sources k8s, reserved, cidr, any,
// ...). A label set is kept sorted by its string form, so equal sets have one canonical form; that
// form keys identities and selector-cache entries.

export interface Label {
  source: string;
  key: string;
  value: string;
}

/** Upstream's label sources; `any` matches every source in a selector. */
export const LABEL_SOURCES = ['k8s', 'reserved', 'cidr', 'cidrgroup', 'fqdn', 'node', 'cni', 'unspec', 'any'] as const;
export type LabelSource = (typeof LABEL_SOURCES)[number];

export const SOURCE_K8S = 'k8s';
export const SOURCE_RESERVED = 'reserved';
export const SOURCE_ANY = 'any';

/**
 * Parses `source:key=value`, `key=value` (source `unspec`) or `source:key` (empty value). The
 * source is what stands before the first colon, but only when it is one of upstream's sources:
 * keys such as `io.cilium.k8s.policy.name` carry no colon, and a colon inside the key of an
 * unprefixed label stays part of the key.
 */
export function parseLabel(text: string): Label {
  const eq = text.indexOf('=');
  const head = eq < 0 ? text : text.slice(0, eq);
  const value = eq < 0 ? '' : text.slice(eq + 1);
  const colon = head.indexOf(':');
  const maybeSource = colon < 0 ? '' : head.slice(0, colon);
  if (colon >= 0 && (LABEL_SOURCES as readonly string[]).includes(maybeSource)) {
    return { source: maybeSource, key: head.slice(colon + 1), value };
  }
  return { source: 'unspec', key: head, value };
}

/** `source:key=value`, or `source:key` for an empty value, as upstream prints labels. */
export function formatLabel(l: Label): string {
  return l.value === '' ? `${l.source}:${l.key}` : `${l.source}:${l.key}=${l.value}`;
}

/** A canonical, immutable label set. */
export class LabelSet {
  private readonly byKey: ReadonlyMap<string, Label>;
  /** Sorted `source:key=value` strings. */
  readonly strings: readonly string[];
  /** The canonical form: the sorted strings joined by `;`. */
  readonly key: string;

  constructor(labels: Iterable<Label>) {
    const byKey = new Map<string, Label>();
    for (const l of labels) byKey.set(`${l.source}:${l.key}`, l);
    this.byKey = byKey;
    this.strings = [...byKey.values()].map(formatLabel).sort();
    this.key = this.strings.join(';');
  }

  static parse(texts: Iterable<string>): LabelSet {
    return new LabelSet([...texts].map(parseLabel));
  }

  /** From Kubernetes-style `key: value` pairs, all with one source. */
  static fromRecord(source: string, record: Readonly<Record<string, string>>): LabelSet {
    return new LabelSet(Object.entries(record).map(([key, value]) => ({ source, key, value })));
  }

  get size(): number {
    return this.byKey.size;
  }

  labels(): Label[] {
    return [...this.byKey.values()];
  }

  /**
   * The value of `key` under `source`; source `any` (or undefined) finds the key under any
   * source, as a selector key without a source prefix does.
   */
  get(key: string, source?: string): string | undefined {
    if (source !== undefined && source !== SOURCE_ANY) return this.byKey.get(`${source}:${key}`)?.value;
    for (const l of this.byKey.values()) if (l.key === key) return l.value;
    return undefined;
  }

  has(key: string, source?: string): boolean {
    return this.get(key, source) !== undefined;
  }

  /** `source:key=value` → value pairs, as CiliumIdentity `security-labels` holds them. */
  toSecurityLabels(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const l of [...this.byKey.values()].sort((a, b) => formatLabel(a).localeCompare(formatLabel(b)))) out[`${l.source}:${l.key}`] = l.value;
    return out;
  }

  static fromSecurityLabels(record: Readonly<Record<string, string>>): LabelSet {
    return new LabelSet(Object.entries(record).map(([k, value]) => ({ ...parseLabel(k), value })));
  }

  filter(keep: (l: Label) => boolean): LabelSet {
    return new LabelSet([...this.byKey.values()].filter(keep));
  }

  union(other: LabelSet): LabelSet {
    return new LabelSet([...this.byKey.values(), ...other.byKey.values()]);
  }

  equals(other: LabelSet): boolean {
    return this.key === other.key;
  }
}
