// hubble-relay: parse the options, follow the peer service, serve observer.Observer over every
// node until SIGTERM/SIGINT.
import { readFileSync } from 'node:fs';
import { loadConfig } from '../controllers/config/options.js';
import { RELAY_OPTIONS, relaySettings } from '../controllers/hubble/relay/options.js';
import { HubbleRelay } from '../controllers/hubble/relay/relay.js';
import { newLogger } from '../controllers/runtime/log.js';
import { runEntryPoint } from './entry.js';

const log = newLogger('hubble-relay');
const VERSION = `cilium-ts ${(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version}`;

runEntryPoint(log, () => loadConfig('hubble-relay', RELAY_OPTIONS, process.argv.slice(2), process.env), async (config) => {
  const stop = new AbortController();
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => stop.abort());
  await new HubbleRelay(relaySettings(config, VERSION), log).run(stop.signal);
});
