// Our .proto definitions against upstream's own (api/v1 of the cilium Go module the upstream hubble
// CLI is built from, in the Go module cache): every message, enum and service of ours must have
// upstream's fields (name, number, type, label, oneof), values and methods, and the other way round.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import { LOADER_OPTIONS, PROTO_DIR } from '../../../controllers/hubble/protos.js';

const CILIUM_VERSION = process.env.CILIUM_VERSION ?? 'v1.20.2';
const FILES = ['observer/observer.proto', 'peer/peer.proto', 'relay/relay.proto'];

interface Descriptor {
  field?: { name: string; number: number; label: string; type: string; typeName: string; oneofIndex: number }[];
  oneofDecl?: { name: string }[];
  value?: { name: string; number: number }[];
}

const typeName = (t: object) => (t as { name: string }).name;

// One comparable line per type: fields, enum values or methods.
function shapes(def: PackageDefinition): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, d] of Object.entries(def)) {
    if ('format' in d) {
      const t = d.type as Descriptor;
      const parts = t.field
        ? [...t.field.map((f) => `${f.number}:${f.name}:${f.label}:${f.type}:${f.typeName}:${f.oneofIndex}`).sort(), ...(t.oneofDecl ?? []).map((o) => `oneof ${o.name}`)]
        : (t.value ?? []).map((v) => `${v.name}=${v.number}`).sort();
      out.set(name, parts.join(' '));
    } else {
      out.set(name, Object.entries(d).map(([m, x]) => `${m}(${typeName(x.requestType.type)}${x.requestStream ? ' stream' : ''}) ${typeName(x.responseType.type)}${x.responseStream ? ' stream' : ''}`).sort().join(' '));
    }
  }
  return out;
}

describe('our Hubble .proto files against upstream`s', () => {
  it(`have upstream ${CILIUM_VERSION}'s packages, messages, fields, numbers, enums and services`, () => {
    const modCache = execFileSync('go', ['env', 'GOMODCACHE'], { encoding: 'utf8' }).trim();
    const upstreamDir = path.join(modCache, 'github.com', 'cilium', `cilium@${CILIUM_VERSION}`, 'api', 'v1');
    if (!existsSync(upstreamDir)) throw new Error(`${upstreamDir} is missing: \`go mod download github.com/cilium/cilium@${CILIUM_VERSION}\` (hack/install-tools.sh does when it builds hubble-upstream)`);
    const ours = shapes(loadSync(FILES, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] }));
    const theirs = shapes(loadSync(FILES, { ...LOADER_OPTIONS, includeDirs: [upstreamDir] }));
    expect([...ours.keys()].sort(), 'types').to.deep.equal([...theirs.keys()].sort());
    for (const [name, shape] of theirs) expect(ours.get(name), name).to.equal(shape);
    expect(ours.size).to.be.greaterThan(90);
  });
});
