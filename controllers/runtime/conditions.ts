// metav1.Condition handling as apimachinery's meta.SetStatusCondition does it: one condition per
// type, lastTransitionTime moves only when the status changes.

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason?: string;
  message?: string;
  /** The metadata.generation the condition was computed from. */
  observedGeneration?: number;
  lastTransitionTime?: string;
}

// metav1.Time: RFC 3339 in whole seconds.
export function kubeTime(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z');
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/**
 * The conditions with `cond` set: added if its type is new, otherwise replaced, keeping the old
 * lastTransitionTime when the status did not change. `generation` becomes observedGeneration.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  cond: Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>,
  generation?: number,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === cond.type);
  const old = i < 0 ? undefined : list[i];
  const next: Condition = {
    ...cond,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    lastTransitionTime: old !== undefined && old.status === cond.status && old.lastTransitionTime ? old.lastTransitionTime : kubeTime(now),
  };
  if (i < 0) list.push(next);
  else list[i] = next;
  return list;
}
