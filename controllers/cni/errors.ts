// CNI error results: a plugin that fails prints {cniVersion, code, msg, details} on stdout and exits
// non-zero; the runtime shows msg and details to the user (kubelet puts them in the pod's events).
// Codes below 100 are the spec's well-known ones; 100 and up belong to the plugin.

/** Well-known codes of the CNI spec. */
export const CNI_ERR = {
  incompatibleVersion: 1,
  unsupportedField: 2,
  unknownContainer: 3,
  invalidEnvironment: 4,
  ioFailure: 5,
  decodingFailure: 6,
  invalidNetworkConfig: 7,
  tryAgainLater: 11,
  pluginNotAvailable: 50,
  // Upstream cilium-cni's own codes (plugins/cilium-cni/types).
  healthzGet: 100,
  unhealthy: 101,
  // Ours.
  interfaceCheck: 110,
  ipamFailed: 111,
  endpointCreateFailed: 112,
  linkSetupFailed: 113,
  agentApiFailed: 114,
  internal: 999,
} as const;

export interface CniErrorObject {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  constructor(
    readonly code: number,
    /** Short, stable summary. */
    readonly msg: string,
    /** The full reason, naming the field or the step that failed. */
    readonly details = '',
    options?: { cause?: unknown },
  ) {
    super(details ? `${msg}: ${details}` : msg, options);
    this.name = 'CniError';
  }
}

/** The error object for any thrown value; a non-CniError is an internal error with its message as details. */
export function errorObject(err: unknown, cniVersion: string): CniErrorObject {
  const e = err instanceof CniError ? err : new CniError(CNI_ERR.internal, 'internal error', err instanceof Error ? err.message : String(err));
  return { cniVersion, code: e.code, msg: e.msg, ...(e.details ? { details: e.details } : {}) };
}
