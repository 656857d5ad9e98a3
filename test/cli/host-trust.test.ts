// The helper's host trust without a server: the known_hosts file made from
// /v1/host-ca.pub (read back by ssh-keygen), and which ssh arguments leave
// host checking to jit-ssh.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { hostTrustArgs, knownHostsText, sshOptionsGiven, sshPath } from '../../src/cli/client/host-trust.js';
import { ClientError } from '../../src/cli/client/api.js';
import { tempDir } from '../helpers/keys.js';

const key = (dir: string, name: string) => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path.join(dir, name)], { stdio: 'ignore' });
  return readFileSync(path.join(dir, `${name}.pub`), 'utf8').trim();
};
const pair = (line: string) => line.split(' ').slice(0, 2).join(' ');

test('ok: every listed host CA key (a rotation lists several) becomes @cert-authority; a retired one @revoked', () => {
  const dir = tempDir();
  const [next, old, gone] = [key(dir, 'next'), key(dir, 'old'), key(dir, 'gone')];
  const body = `# jit-ssh host CA keys: trust them\n${next}\n${old}\n# retired ${pair(gone)}\n`;
  const text = knownHostsText(body, 'https://ca.example.com', '*.example.com,!bastion.example.com', new Date('2026-12-04T10:00:00Z'));
  const lines = text.split('\n').filter((l) => l.startsWith('@'));
  assert.deepEqual(lines, [
    `@cert-authority *.example.com,!bastion.example.com ${pair(next)} jit-ssh-host-ca`,
    `@cert-authority *.example.com,!bastion.example.com ${pair(old)} jit-ssh-host-ca`,
    `@revoked * ${pair(gone)} jit-ssh-host-ca-retired`,
  ]);
  assert.match(text, /^# jit-ssh host CA keys from https:\/\/ca\.example\.com for hosts \*\.example\.com,!bastion\.example\.com, fetched at 2026-12-04T10:00:00\.000Z\n/);
  const file = path.join(dir, 'known_hosts');
  writeFileSync(file, text);
  // ssh-keygen finds the CA lines for a matching host, and not for the negated one.
  assert.match(execFileSync('ssh-keygen', ['-F', 'web-1.example.com', '-f', file], { encoding: 'utf8' }), /@cert-authority/);
  assert.doesNotMatch(execFileSync('ssh-keygen', ['-F', 'bastion.example.com', '-f', file], { encoding: 'utf8' }).replace(/^#.*\n/gm, ''), /@cert-authority/);
});

test('fail: a body with no usable key, or with something that is not a key, is refused whole', () => {
  const dir = tempDir();
  const k = key(dir, 'k');
  for (const body of ['', '# only comments\n', `# retired ${pair(k)}\n${k}\n`, `${k}\nnot a key\n`, `ssh-ed25519-cert-v01@openssh.com AAAA\n`, `<html>oops</html>\n`]) {
    assert.throws(() => knownHostsText(body, 'http://ca', '*', new Date()), ClientError, JSON.stringify(body));
  }
});

test('ok: the ssh options given before the destination, in each spelling ssh takes', () => {
  assert.deepEqual([...sshOptionsGiven(['-o', 'UserKnownHostsFile=/x', '-oStrictHostKeyChecking=no', '-p', '22', '-vo', 'HostKeyAlias a', 'host', '-o', 'Late=1'])], ['userknownhostsfile', 'stricthostkeychecking', 'hostkeyalias']);
  assert.deepEqual([...sshOptionsGiven(['-l', 'root', 'host'])], []);
  const file = '/home/a/.jit-ssh/known_hosts';
  assert.deepEqual(hostTrustArgs(['host'], file), ['-o', `UserKnownHostsFile=${file}`, '-o', 'StrictHostKeyChecking=yes']);
  assert.deepEqual(hostTrustArgs(['-o', 'stricthostkeychecking=accept-new', 'host'], file), []);
  assert.deepEqual(hostTrustArgs(['-o', 'UserKnownHostsFile /dev/null', 'host'], file), []);
  // After the destination it is the remote command's, not ssh's.
  assert.deepEqual(hostTrustArgs(['host', '-o', 'StrictHostKeyChecking=no'], file).length, 4);
  assert.deepEqual(hostTrustArgs(['host'], null), []);
  assert.equal(sshPath('/home/a b/100%/kh'), '"/home/a b/100%%/kh"');
});
