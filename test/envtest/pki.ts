// Certificates and keys for one control plane: a CA, the apiserver's serving certificate for
// 127.0.0.1 and localhost, an admin client certificate in group system:masters, and the
// service-account token signing key pair. openssl signs the certificates (node:crypto cannot).
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pki {
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountPublicKey: string;
  serviceAccountPrivateKey: string;
}

// Long enough for a local cluster that stays up for weeks.
const validityDays = '365';

const opensslConfig = `[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign,digitalSignature
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
[client]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
`;

async function openssl(args: string[], what: string): Promise<void> {
  try {
    await run('openssl', args);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`pki: openssl could not create the ${what}: ${(err as Error).message}${stderr ? `\n${stderr}` : ''}`, {
      cause: err,
    });
  }
}

function newCertArgs(config: string, keyPath: string, certPath: string, subject: string, extensions: string): string[] {
  return [
    'req', '-config', config, '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyPath, '-out', certPath, '-days', validityDays, '-subj', subject, '-extensions', extensions,
  ];
}

export async function generatePki(dir: string): Promise<Pki> {
  const file = (name: string) => path.join(dir, name);
  const config = file('openssl.cnf');
  await writeFile(config, opensslConfig);
  const caKey = file('ca.key');
  const pki: Pki = {
    caCert: file('ca.crt'),
    servingCert: file('apiserver.crt'),
    servingKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    serviceAccountPublicKey: file('sa-signer.pub'),
    serviceAccountPrivateKey: file('sa-signer.key'),
  };
  await openssl(newCertArgs(config, caKey, pki.caCert, '/CN=cilium-ts-envtest-ca', 'ca'), 'CA certificate');
  const signedByCa = ['-CA', pki.caCert, '-CAkey', caKey];
  await Promise.all([
    openssl([...newCertArgs(config, pki.servingKey, pki.servingCert, '/CN=kube-apiserver', 'serving'), ...signedByCa], 'serving certificate'),
    openssl([...newCertArgs(config, pki.adminKey, pki.adminCert, '/O=system:masters/CN=cilium-ts-admin', 'client'), ...signedByCa], 'admin client certificate'),
  ]);
  const sa = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(pki.serviceAccountPublicKey, sa.publicKey, { mode: 0o644 });
  await writeFile(pki.serviceAccountPrivateKey, sa.privateKey, { mode: 0o600 });
  return pki;
}
