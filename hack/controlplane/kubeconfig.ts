// A self-contained kubeconfig (certificates inlined) for the admin user of one control plane.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';
import type { Pki } from './pki.js';

const contextName = 'cilium-ts';

function base64File(file: string): string {
  return readFileSync(file).toString('base64');
}

export function kubeconfigYaml(serverUrl: string, pki: Pki): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: contextName, cluster: { server: serverUrl, 'certificate-authority-data': base64File(pki.caCert) } }],
    users: [
      {
        name: 'cilium-ts-admin',
        user: { 'client-certificate-data': base64File(pki.adminCert), 'client-key-data': base64File(pki.adminKey) },
      },
    ],
    contexts: [{ name: contextName, context: { cluster: contextName, user: 'cilium-ts-admin', namespace: 'default' } }],
    'current-context': contextName,
  });
}

export async function writeKubeconfig(file: string, serverUrl: string, pki: Pki): Promise<void> {
  await writeFile(file, kubeconfigYaml(serverUrl, pki), { mode: 0o600 });
}
