// Endpoint selectors as upstream's api.EndpointSelector: a Kubernetes label selector whose keys
// carry a label source (`k8s:app`, `reserved:host`, `cidr:10.0.0.0/8`); a key without a source
// means any source. Matched against an identity's LabelSet.
import type { LabelSelector } from '../../../crds/gen/index.js';
import { type LabelSet, parseLabel, SOURCE_ANY } from '../labels/labels.js';

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface Requirement {
  source: string;
  key: string;
  operator: SelectorOperator;
  values: readonly string[];
}

/** `source:key` of a selector key; a key without one of upstream's sources gets `defaultSource`. */
export function parseSelectorKey(text: string, defaultSource: string = SOURCE_ANY): { source: string; key: string } {
  const l = parseLabel(text);
  return l.source === 'unspec' && !text.startsWith('unspec:') ? { source: defaultSource, key: l.key } : { source: l.source, key: l.key };
}

// Label sets are immutable and matched against every selector, so each is indexed by key once.
const indexes = new WeakMap<LabelSet, Map<string, { source: string; value: string }[]>>();

function labelValues(labels: LabelSet, source: string, key: string): string[] {
  let index = indexes.get(labels);
  if (!index) {
    index = new Map();
    for (const l of labels.labels()) {
      const list = index.get(l.key) ?? [];
      list.push({ source: l.source, value: l.value });
      index.set(l.key, list);
    }
    indexes.set(labels, index);
  }
  return (index.get(key) ?? []).filter((l) => source === SOURCE_ANY || l.source === source).map((l) => l.value);
}

export class EndpointSelector {
  /** Canonical text: equal selectors share one selector-cache entry. */
  readonly key: string;

  constructor(readonly requirements: readonly Requirement[]) {
    this.key = requirements
      .map((r) => `${r.source}:${r.key} ${r.operator} ${[...r.values].sort().join(',')}`)
      .sort()
      .join('; ');
  }

  /** Upstream's NewESFromK8sLabelSelector: matchLabels become `In` requirements. */
  static fromLabelSelector(sel: LabelSelector | undefined, defaultSource: string = SOURCE_ANY): EndpointSelector {
    const reqs: Requirement[] = [];
    for (const [k, v] of Object.entries(sel?.matchLabels ?? {})) reqs.push({ ...parseSelectorKey(k, defaultSource), operator: 'In', values: [v ?? ''] });
    for (const e of sel?.matchExpressions ?? []) reqs.push({ ...parseSelectorKey(e.key, defaultSource), operator: e.operator, values: e.values ?? [] });
    return new EndpointSelector(reqs);
  }

  static readonly WILDCARD = new EndpointSelector([]);

  /** Selects every identity, world included: map entries use identity 0 for it. */
  get isWildcard(): boolean {
    return this.requirements.length === 0;
  }

  with(req: Requirement): EndpointSelector {
    return new EndpointSelector([...this.requirements, req]);
  }

  /** Whether a requirement names `key` under `source` (an `any` requirement counts for every source). */
  hasKey(source: string, key: string): boolean {
    return this.requirements.some((r) => r.key === key && r.source === source);
  }

  hasKeyPrefix(source: string, prefix: string): boolean {
    return this.requirements.some((r) => r.source === source && r.key.startsWith(prefix));
  }

  hasSource(source: string): boolean {
    return this.requirements.some((r) => r.source === source);
  }

  matches(labels: LabelSet): boolean {
    return this.requirements.every((r) => {
      const values = labelValues(labels, r.source, r.key);
      switch (r.operator) {
        case 'In':
          return values.some((v) => r.values.includes(v));
        case 'NotIn':
          return !values.some((v) => r.values.includes(v));
        case 'Exists':
          return values.length > 0;
        case 'DoesNotExist':
          return values.length === 0;
      }
      return false;
    });
  }
}
