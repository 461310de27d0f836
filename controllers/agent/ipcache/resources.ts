// The agent's watches of CiliumNodes and CiliumEndpoints, validated on read: a version the CRD's
// schema refuses is reported once per version as a Warning event on the object, naming the fields,
// and never reaches the loops. An object never valid stays out of the store; one that was valid
// keeps its last valid version (controllers/runtime/resource.ts), so a pod does not fall to world.
import type { CiliumEndpoint, CiliumNode } from '../../../crds/gen/index.js';
import { validateCiliumEndpoint, validateCiliumNode, type FieldError, type ValidationResult } from '../../../crds/validation.js';
import type { ApiClient } from '../../runtime/apiclient.js';
import type { EventRecorder } from '../../runtime/events.js';
import { ciliumEndpoints, ciliumNodes, type KubeObject, type ResourceType } from '../../runtime/kinds.js';
import type { Logger } from '../../runtime/log.js';
import { Resource } from '../../runtime/resource.js';

/** Reason of the Warning event on an object the agent ignores as malformed. */
export const REASON_INVALID = 'InvalidObject';

/**
 * How long the agent's loops wait for their watches' first list (setTimeout's largest delay): an
 * apiserver that is away at start delays them, it does not end them.
 */
export const CACHE_SYNC_FOREVER_MS = 2 ** 31 - 1;

// As many reports as EventRecorder remembers events; an older one may be reported again.
const REMEMBERED = 4096;

export interface WatchOptions {
  client: ApiClient;
  events?: EventRecorder;
  logger?: Logger;
  fieldSelector?: string;
}

/**
 * Reports each problem of an object version once (a relist or a recompute brings the same version
 * again) as a Warning event naming the fields.
 */
export class InvalidObjectReporter {
  private readonly reported = new Set<string>();

  constructor(private readonly events?: EventRecorder) {}

  report(obj: KubeObject, errors: readonly FieldError[]): void {
    const message = `${obj.kind ?? 'object'} ignored: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`;
    const key = `${obj.metadata?.uid ?? ''}\0${obj.metadata?.resourceVersion ?? ''}\0${message}`;
    if (this.reported.has(key)) return;
    this.reported.add(key);
    if (this.reported.size > REMEMBERED) this.reported.delete(this.reported.values().next().value as string);
    void this.events?.event(obj, 'Warning', REASON_INVALID, message);
  }
}

function validatedResource<T extends KubeObject>(
  name: string,
  type: ResourceType,
  validate: (obj: unknown) => ValidationResult<T>,
  opts: WatchOptions,
  reporter: InvalidObjectReporter,
): Resource<T> {
  return new Resource<T>({
    name,
    client: opts.client,
    type,
    fieldSelector: opts.fieldSelector,
    validate,
    onInvalid: (obj, errors) => reporter.report(obj, errors),
    logger: opts.logger,
  });
}

export function ciliumNodeResource(name: string, opts: WatchOptions, reporter = new InvalidObjectReporter(opts.events)): Resource<CiliumNode> {
  return validatedResource(name, ciliumNodes, validateCiliumNode, opts, reporter);
}

export function ciliumEndpointResource(name: string, opts: WatchOptions, reporter = new InvalidObjectReporter(opts.events)): Resource<CiliumEndpoint> {
  return validatedResource(name, ciliumEndpoints, validateCiliumEndpoint, opts, reporter);
}
