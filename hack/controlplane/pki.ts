// Certificates and keys for one control plane: a CA, the apiserver's serving certificate for
// 127.0.0.1, localhost and any further addresses it is reached at, an admin client certificate in group system:masters, the
// service-account token signing key pair, and etcd's own CA with etcd's serving certificate and
// the apiserver's etcd client certificate. etcd trusts only its own CA, as kubeadm sets it up, so
// no certificate the apiserver's CA signs (admin, later agents) opens etcd. openssl signs the
// certificates (node:crypto cannot). Every key is 0600: only the user running the control plane
// reads it.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
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
  etcdCaCert: string;
  // etcd's serving certificate, also its peer certificate (server and client use).
  etcdServerCert: string;
  etcdServerKey: string;
  // The only client etcd accepts: kube-apiserver.
  etcdClientCert: string;
  etcdClientKey: string;
}

// Long enough for a local cluster that stays up for weeks.
const validityDays = '365';

const opensslConfig = (servingIPs: readonly string[]): string => `[req]
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
subjectAltName = ${['127.0.0.1', ...servingIPs].map((ip) => `IP:${ip}`).join(',')},DNS:localhost
[etcd_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth,clientAuth
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

/** servingIPs: addresses besides 127.0.0.1 the apiserver is reached at. */
export async function generatePki(dir: string, servingIPs: readonly string[] = []): Promise<Pki> {
  const file = (name: string) => path.join(dir, name);
  const config = file('openssl.cnf');
  await writeFile(config, opensslConfig(servingIPs));
  const caKey = file('ca.key');
  const etcdCaKey = file('etcd-ca.key');
  const pki: Pki = {
    caCert: file('ca.crt'),
    servingCert: file('apiserver.crt'),
    servingKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    serviceAccountPublicKey: file('sa-signer.pub'),
    serviceAccountPrivateKey: file('sa-signer.key'),
    etcdCaCert: file('etcd-ca.crt'),
    etcdServerCert: file('etcd-server.crt'),
    etcdServerKey: file('etcd-server.key'),
    etcdClientCert: file('apiserver-etcd-client.crt'),
    etcdClientKey: file('apiserver-etcd-client.key'),
  };
  await Promise.all([
    openssl(newCertArgs(config, caKey, pki.caCert, '/CN=cilium-ts-ca', 'ca'), 'CA certificate'),
    openssl(newCertArgs(config, etcdCaKey, pki.etcdCaCert, '/CN=cilium-ts-etcd-ca', 'ca'), 'etcd CA certificate'),
  ]);
  const signedByCa = ['-CA', pki.caCert, '-CAkey', caKey];
  const signedByEtcdCa = ['-CA', pki.etcdCaCert, '-CAkey', etcdCaKey];
  await Promise.all([
    openssl([...newCertArgs(config, pki.servingKey, pki.servingCert, '/CN=kube-apiserver', 'serving'), ...signedByCa], 'serving certificate'),
    openssl([...newCertArgs(config, pki.adminKey, pki.adminCert, '/O=system:masters/CN=cilium-ts-admin', 'client'), ...signedByCa], 'admin client certificate'),
    openssl([...newCertArgs(config, pki.etcdServerKey, pki.etcdServerCert, '/CN=etcd', 'etcd_server'), ...signedByEtcdCa], 'etcd serving certificate'),
    openssl([...newCertArgs(config, pki.etcdClientKey, pki.etcdClientCert, '/CN=kube-apiserver-etcd-client', 'client'), ...signedByEtcdCa], 'apiserver etcd client certificate'),
  ]);
  const sa = generateKeyPairSync('ec', {
    namedCurve: 'prime256v1',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(pki.serviceAccountPublicKey, sa.publicKey, { mode: 0o644 });
  await writeFile(pki.serviceAccountPrivateKey, sa.privateKey, { mode: 0o600 });
  // openssl creates keys with the umask's mode, which may let others read them.
  await Promise.all([caKey, etcdCaKey, pki.servingKey, pki.adminKey, pki.etcdServerKey, pki.etcdClientKey].map((key) => chmod(key, 0o600)));
  return pki;
}
