// One CNI invocation: environment and stdin in, stdout and exit code out. Errors become the spec's
// error object on stdout with exit code 1, so the runtime can show code, msg and details.
import { AgentClient } from '../agent/api/client.js';
import { cmdAdd } from './add.js';
import { parseArgs, parseCommand } from './args.js';
import { cmdCheck } from './check.js';
import { cmdDel } from './del.js';
import { CNI_ERR, CniError, errorObject } from './errors.js';
import { parseNetConf, peekCniVersion } from './netconf.js';
import { PluginLog, StepTimer } from './plugin-log.js';
import { CURRENT_VERSION, SUPPORTED_VERSIONS } from './versions.js';

export interface PluginOutcome {
  stdout: string;
  exitCode: number;
}

export async function runPlugin(env: Record<string, string | undefined>, stdin: string): Promise<PluginOutcome> {
  const timer = new StepTimer();
  let log: PluginLog | undefined;
  try {
    const command = parseCommand(env);
    if (command === 'VERSION') return { stdout: JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }) + '\n', exitCode: 0 };
    const args = parseArgs(command, env);
    const conf = parseNetConf(stdin);
    log = new PluginLog(conf.logFile, conf.enableDebug);
    log.with({ command, containerID: args.containerId, ifname: args.ifname, netns: args.netns, k8sNamespace: args.pod.K8S_POD_NAMESPACE, k8sPodName: args.pod.K8S_POD_NAME });
    timer.mark('parse');
    log.debug(`processing CNI ${command} request`, { netconf: stdin, path: args.path });
    if (command === 'STATUS' || command === 'GC') {
      // Both verbs arrived with spec 1.1.0, which this plugin does not speak.
      throw new CniError(CNI_ERR.incompatibleVersion, `config version does not allow ${command}`, `${command} needs cniVersion 1.1.0 or later; config is "${conf.cniVersion}"`);
    }
    const ctx = { args, conf, agent: new AgentClient({ socketPath: conf.socketPath }), log, timer };
    let stdout = '';
    if (command === 'ADD') {
      const result = await cmdAdd(ctx);
      log.debug('returning result', { result });
      stdout = JSON.stringify(result) + '\n';
    }
    else if (command === 'DEL') await cmdDel(ctx);
    else await cmdCheck(ctx);
    log.info(`CNI ${command} done`, { durationsMs: timer.steps, totalMs: timer.totalMs });
    return { stdout, exitCode: 0 };
  } catch (err) {
    const obj = errorObject(err, peekCniVersion(stdin) ?? CURRENT_VERSION);
    log?.error('CNI call failed', { code: obj.code, msg: obj.msg, details: obj.details, durationsMs: timer.steps, totalMs: timer.totalMs });
    return { stdout: JSON.stringify(obj) + '\n', exitCode: 1 };
  }
}
