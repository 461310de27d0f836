// Routes libbpf's print callback into the injected datapath logger and lets a caller collect the
// warnings one operation printed, so a failed open, load or netlink call can carry them in its
// BpfError.
import koffi from 'koffi';
import { discardLogger, type DatapathLogger } from '../log.js';
import { BpfError } from './errors.js';
import { fn, PrintFnPtr } from './native.js';

const LIBBPF_WARN = 0;
const LIBBPF_INFO = 1;

let logger: DatapathLogger = discardLogger;
const lineBuf = Buffer.alloc(16 * 1024);
let collecting: { warnings: string[]; quiet: boolean } | undefined;

function onPrint(level: number, format: string, args: unknown): number {
  // args is the caller's va_list; vsnprintf consumes it exactly once.
  const len = fn.vsnprintf(lineBuf, lineBuf.length, format, args);
  const text = lineBuf.toString('utf8', 0, Math.max(0, Math.min(len, lineBuf.length - 1))).trimEnd();
  if (level === LIBBPF_WARN) {
    collecting?.warnings.push(text);
    if (collecting?.quiet) logger.debug(text);
    else logger.warn(text);
  } else if (level === LIBBPF_INFO) {
    logger.debug(text);
  }
  return 0;
}

/** Where libbpf's messages go from now on; libbpf has one print hook per process, so one logger. */
export function setLibbpfLogger(to: DatapathLogger): void {
  logger = to;
}

// libbpf keeps one process-wide print hook; registered callbacks live until unregistered, and this
// one is meant to live as long as the library does.
fn.setPrint(koffi.register(onPrint, PrintFnPtr));

/**
 * Runs `body` and, when it throws a BpfError, appends the warnings libbpf printed meanwhile (the
 * kernel's extack text, the failing program) to its message. `quiet` logs them at debug level, for
 * calls whose failures are expected answers or end up in the error anyway.
 */
export function withLibbpfWarnings<T>(body: () => T, opts: { quiet?: boolean; extraDetail?: () => string } = {}): T {
  const outer = collecting;
  const current = { warnings: [] as string[], quiet: opts.quiet ?? false };
  collecting = current;
  try {
    return body();
  } catch (err) {
    if (!(err instanceof BpfError)) throw err;
    const detail = [...current.warnings, opts.extraDetail?.() ?? ''].filter((line) => line !== '').join('\n');
    throw detail === '' ? err : new BpfError(err.errno, err.op, err.object, detail);
  } finally {
    collecting = outer;
    outer?.warnings.push(...current.warnings);
  }
}
