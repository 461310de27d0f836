// The `cilium` command line: global flags, the command tree and how a command's outcome becomes
// output and an exit code (0, or 1 with one "Error: ..." line, as upstream's cilium-dbg).
import { Command, CommanderError } from 'commander';
import { CliContext, CliError, type CliIO } from './context.js';
import { addAgentApiCommands, type Runner } from './commands/agent-api.js';
import { addBpfCommands } from './commands/bpf.js';
import { addMonitorCommand } from './commands/monitor.js';
import { CliUsageError, type TargetFlags } from './target.js';

interface GlobalFlags {
  host?: string;
  node?: string;
  bpfPinDir?: string;
}

export function buildProgram(io: CliIO): Command {
  const program = new Command('cilium')
    .description('CLI for interacting with the local cilium-ts agent')
    .option('-H, --host <uri>', 'URI to server-side API: unix:///path/to/cilium.sock (env CILIUM_SOCK; default unix:///var/run/cilium/cilium.sock)')
    .option('--node <name>', 'a node of the local cluster: its socket and pin directory under .local/nodes/<name>/')
    .option('--bpf-pin-dir <dir>', "the datapath's pin directory, for the bpf commands (default: the node's, else /sys/fs/bpf/tc/globals)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout(s), writeErr: (s) => io.stderr(s) });

  const run: Runner = (cmd, action) => {
    return cmd.action(async (...args: unknown[]) => {
      const self = args[args.length - 1] as Command;
      const flags = self.optsWithGlobals<GlobalFlags>();
      const target: TargetFlags = { host: flags.host, node: flags.node, bpfPinDir: flags.bpfPinDir };
      // Commander passes the arguments, then the command's options, then the command.
      await (action as (ctx: CliContext, ...rest: unknown[]) => void | Promise<void>)(new CliContext(io, target), ...args.slice(0, -1));
    });
  };
  addAgentApiCommands(program, run);
  addBpfCommands(program, run);
  addMonitorCommand(program, run);
  return program;
}

/** Runs one command line (without the node and script arguments); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    if (err instanceof CliError || err instanceof CliUsageError) {
      io.stderr(`Error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
