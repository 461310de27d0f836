// The logger the datapath writes to, injected by its owner (the agent passes its winston logger,
// which fits this shape), so the datapath imports nothing of the control plane.
export type LogMeta = Record<string, unknown>;

export interface DatapathLogger {
  error(message: string, meta?: LogMeta): void;
  warn(message: string, meta?: LogMeta): void;
  info(message: string, meta?: LogMeta): void;
  debug(message: string, meta?: LogMeta): void;
}

/** Discards everything: what the process-wide libbpf hook logs to until an owner injects one. */
export const discardLogger: DatapathLogger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
};
