// Teardown that survives its own failures: every step runs even when an earlier one throws, and
// the failures are rethrown together once all have run, so one broken step never leaves the
// namespaces, pins or temp dirs of the later ones behind.

export type CleanupStep = readonly [what: string, step: () => unknown];

export async function runCleanup(owner: string, steps: readonly CleanupStep[]): Promise<void> {
  const errors: Error[] = [];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (err) {
      errors.push(new Error(`${owner}: ${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err }));
    }
  }
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new AggregateError(errors, `${owner}: ${errors.length} cleanup steps failed: ${errors.map((e) => e.message).join('; ')}`);
}
