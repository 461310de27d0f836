// hubble: our Hubble CLI (observe, status, list nodes) against a node's Hubble server or the relay.
// Ctrl-C ends a following `observe` cleanly.
import { runHubble } from '../controllers/hubble/cli/program.js';

const interrupt = new AbortController();
process.once('SIGINT', () => interrupt.abort());

process.exitCode = await runHubble(process.argv.slice(2), {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
  now: () => new Date(),
  signal: interrupt.signal,
}, process.stdout.isTTY);
process.removeAllListeners('SIGINT');
