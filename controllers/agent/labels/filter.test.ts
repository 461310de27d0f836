import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { buildLabelFilter, DEFAULT_LABEL_PREFIXES, parseLabelPrefix, parseLabelPrefixFile } from './filter.js';
import { parseLabel } from './labels.js';

describe('identity label filter', () => {
  const { filter } = buildLabelFilter();

  const cases: [string, boolean][] = [
    ['reserved:host', true],
    ['reserved:kube-apiserver', true],
    ['k8s:io.kubernetes.pod.namespace=default', true],
    ['k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default', true],
    ['k8s:io.cilium.k8s.policy.cluster=default', true],
    ['k8s:io.cilium.k8s.policy.serviceaccount=web', true],
    ['k8s:app.kubernetes.io/name=web', true],
    ['k8s:app=web', true],
    ['k8s:tier=frontend', true],
    ['k8s:pod-template-hash=5d4f8c7b9', false],
    ['k8s:pod-template-generation=3', false],
    ['k8s:controller-revision-hash=7c8d', false],
    ['k8s:controller-uid=0b5e', false],
    ['k8s:statefulset.kubernetes.io/pod-name=db-0', false],
    ['k8s:apps.kubernetes.io/pod-index=0', false],
    ['k8s:batch.kubernetes.io/job-completion-index=2', false],
    ['k8s:batch.kubernetes.io/controller-uid=0b5e', false],
    ['k8s:io.kubernetes.container.name=web', false],
    ['k8s:kubernetes.io/hostname=node-1', false],
    ['k8s:beta.kubernetes.io/arch=amd64', false],
    ['k8s:failure-domain.beta.kubernetes.io/zone=a', false],
    ['k8s:k8s.io/whatever=x', false],
    ['k8s:topology.kubernetes.io/zone=a', false],
    ['k8s:annotation.foo=bar', false],
    ['k8s:etcd_node=n1', false],
    // A key merely containing an ignored word elsewhere is not ignored: matches are anchored.
    ['k8s:my-pod-template-hash=1', true],
    ['k8s:example.com/kubernetes.io=1', true],
  ];
  for (const [text, want] of cases) {
    it(`${want ? 'keeps' : 'drops'} ${text}`, () => {
      expect(filter.accepts(parseLabel(text))).to.equal(want);
    });
  }

  it("default list is upstream's, in upstream's order, and is not an allow list", () => {
    expect(DEFAULT_LABEL_PREFIXES[0]).to.equal('reserved:.*');
    expect(DEFAULT_LABEL_PREFIXES).to.have.length(21);
    expect(filter.allowList).to.equal(false);
  });

  it('parses source, ignore marker and regex; refuses empty and bad patterns naming them', () => {
    expect(parseLabelPrefix('k8s:!job-name')).to.include({ source: 'k8s', prefix: 'job-name', ignore: true });
    expect(parseLabelPrefix('team')).to.include({ source: '', prefix: 'team', ignore: false });
    expect(() => parseLabelPrefix('k8s:')).to.throw(/"k8s:": prefix is empty/);
    expect(() => parseLabelPrefix('k8s:(')).to.throw(/"k8s:\(": not a regular expression/);
  });

  it('--labels include switches to allow-list mode: unlisted labels drop', () => {
    const { filter: f } = buildLabelFilter({ labels: ['k8s:team'] });
    expect(f.accepts(parseLabel('k8s:team=a'))).to.equal(true);
    expect(f.accepts(parseLabel('k8s:team-name=a')), 'prefix match').to.equal(true);
    expect(f.accepts(parseLabel('k8s:env=prod'))).to.equal(false);
    expect(f.accepts(parseLabel('k8s:io.kubernetes.pod.namespace=x')), 'defaults stay').to.equal(true);
    expect(f.accepts(parseLabel('cni:team=a')), 'source must match').to.equal(false);
  });

  it('--labels with only ignores keeps everything else', () => {
    const { filter: f } = buildLabelFilter({ labels: ['k8s:!job-name'] });
    expect(f.accepts(parseLabel('k8s:job-name=x'))).to.equal(false);
    expect(f.accepts(parseLabel('k8s:app=web'))).to.equal(true);
    expect(f.allowList).to.equal(false);
  });

  it('longest include beats shorter ignore; equal length ignores', () => {
    const { filter: f } = buildLabelFilter({ labels: ['!foo', 'foo.bar', '!baz', 'baz'] });
    expect(f.accepts(parseLabel('k8s:foo.bar=1'))).to.equal(true);
    expect(f.accepts(parseLabel('k8s:foo.baz=1'))).to.equal(false);
    expect(f.accepts(parseLabel('k8s:baz=1')), 'equal lengths').to.equal(false);
  });

  describe('--label-prefix-file', () => {
    let dir = '';
    beforeEach(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'labelfilter-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('replaces the defaults; its prefixes are literal, not regexes', () => {
      const file = path.join(dir, 'prefixes.json');
      writeFileSync(
        file,
        JSON.stringify({
          version: 1,
          'valid-prefixes': [
            { prefix: '.*', source: 'reserved' },
            { prefix: 'app', source: 'k8s' },
            { prefix: 'app.secret', source: 'k8s', invert: true },
          ],
        }),
      );
      const { filter: f, warnings } = buildLabelFilter({ labelPrefixFile: file });
      expect(warnings).to.deep.equal([]);
      expect(f.accepts(parseLabel('k8s:app=web'))).to.equal(true);
      expect(f.accepts(parseLabel('k8s:app.secret=1'))).to.equal(false);
      expect(f.accepts(parseLabel('k8s:io.kubernetes.pod.namespace=x')), 'defaults replaced').to.equal(false);
      // `.*` from a file is the literal two characters, so reserved:host does not match it.
      expect(f.accepts(parseLabel('reserved:host'))).to.equal(false);
    });

    it('warns when reserved:.* is missing, and refuses bad files naming the field', () => {
      const file = path.join(dir, 'p.json');
      writeFileSync(file, JSON.stringify({ version: 1, 'valid-prefixes': [{ prefix: 'app', source: 'k8s' }] }));
      expect(buildLabelFilter({ labelPrefixFile: file }).warnings).to.have.length(1);
      expect(() => parseLabelPrefixFile('{"version":2}', 'f')).to.throw(/f: version: unsupported version 2/);
      expect(() => parseLabelPrefixFile('{"version":1,"valid-prefixes":[{"prefix":"a"}]}', 'f')).to.throw(/valid-prefixes\[0\]\.source/);
      expect(() => parseLabelPrefixFile('{"version":1,"valid-prefixes":[{"source":"k8s","prefix":""}]}', 'f')).to.throw(/valid-prefixes\[0\]\.prefix/);
      expect(() => parseLabelPrefixFile('nope', 'f')).to.throw(/f: not JSON/);
      expect(parseLabelPrefixFile('{"version":1}', 'f')).to.deep.equal([]);
    });
  });
});
