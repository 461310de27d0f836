// The objects a Resource holds, by ns/name key, with indexes kept current on every change:
// by namespace and by label built in, and any number of custom ones (client-go's Indexer).
import { objectKey, type KubeObject } from './kinds.js';

/** The index values of one object; an object may sit under several values or none. */
export type IndexFunc<T> = (obj: T) => string[];

const byNamespaceIndex = 'namespace';
const byLabelIndex = 'label';

export class Store<T extends KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  // index name → value → keys
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  constructor() {
    this.addIndex(byNamespaceIndex, (o) => (o.metadata?.namespace ? [o.metadata.namespace] : []));
    this.addIndex(byLabelIndex, (o) => Object.entries(o.metadata?.labels ?? {}).map(([k, v]) => `${k}=${v}`));
  }

  /** Adds an index and fills it from the objects already held. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexers.has(name)) throw new Error(`store: index ${name} already exists`);
    this.indexers.set(name, fn);
    this.indices.set(name, new Map());
    for (const [key, obj] of this.items) this.indexOne(name, fn, key, obj);
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  get size(): number {
    return this.items.size;
  }

  byIndex(name: string, value: string): T[] {
    const index = this.indices.get(name);
    if (index === undefined) throw new Error(`store: no index named ${name}`);
    return [...(index.get(value) ?? [])].map((k) => this.items.get(k) as T);
  }

  byNamespace(namespace: string): T[] {
    return this.byIndex(byNamespaceIndex, namespace);
  }

  byLabel(key: string, value: string): T[] {
    return this.byIndex(byLabelIndex, `${key}=${value}`);
  }

  /** Stores `obj` under its key and returns what was there before. */
  upsert(obj: T): T | undefined {
    const key = objectKey(obj);
    const old = this.items.get(key);
    if (old !== undefined) this.unindex(key, old);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) this.indexOne(name, fn, key, obj);
    return old;
  }

  /** Removes the object under `key` and returns it. */
  delete(key: string): T | undefined {
    const old = this.items.get(key);
    if (old === undefined) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  private indexOne(name: string, fn: IndexFunc<T>, key: string, obj: T): void {
    const index = this.indices.get(name) as Map<string, Set<string>>;
    for (const value of fn(obj)) {
      let keys = index.get(value);
      if (keys === undefined) index.set(value, (keys = new Set()));
      keys.add(key);
    }
  }

  private unindex(key: string, obj: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name) as Map<string, Set<string>>;
      for (const value of fn(obj)) {
        const keys = index.get(value);
        keys?.delete(key);
        if (keys?.size === 0) index.delete(value);
      }
    }
  }
}
