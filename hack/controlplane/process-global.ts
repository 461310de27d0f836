// State that must exist once per process although its module may be loaded more than once: mocha
// loads a test file with require() and falls back to import() (e.g. when it imports an ESM-only
// package), and each loader keeps its own copy of every module the file imports.
export function processGlobal<T extends object>(key: string, create: () => T): T {
  const store = globalThis as Record<symbol, unknown>;
  const slot = Symbol.for(key);
  store[slot] ??= create();
  return store[slot] as T;
}
