// Child process for the cleanup tests: starts an attached control plane with the CRDs of the
// directory in argv[2], prints its record as one JSON line, then waits to be signalled.
import { startControlPlane } from '../../../hack/controlplane/controlplane.js';

const crdDir = process.argv[2];
if (crdDir === undefined) throw new Error('usage: hold-control-plane.ts <crd dir>');
const cp = await startControlPlane({ crdDir });
process.stdout.write(`${JSON.stringify(cp.record)}\n`);
setInterval(() => undefined, 60_000);
