// cilium: the CLI of the agent (upstream's cilium-dbg): its REST API, its event stream and the
// datapath's pinned maps. Ctrl-C ends a running `monitor` cleanly; any other command it ends
// after a moment, with the shell's exit code for SIGINT.
import { runCli } from '../controllers/cli/program.js';

const SIGINT_EXIT_CODE = 130;
const INTERRUPT_GRACE_MS = 2000;

const interrupt = new AbortController();
process.once('SIGINT', () => {
  interrupt.abort();
  setTimeout(() => process.exit(SIGINT_EXIT_CODE), INTERRUPT_GRACE_MS).unref();
});

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  now: () => new Date(),
  signal: interrupt.signal,
});
process.removeAllListeners('SIGINT');
