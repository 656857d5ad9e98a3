// OpenSSH's own reading of a certificate: `ssh-keygen -L`, which parses the
// certificate and verifies its CA signature before printing anything, and
// its listing read back into fields.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** "Name: value" fields, and lists ("Name:" followed by indented lines, e.g. Critical Options). */
export type Listing = Record<string, string | string[]>;

/**
 * Runs ssh-keygen -L and parses its listing: "        Name: value" lines, and
 * lists ("        Name: " followed by lines indented 16 spaces).
 */
export function listCertificate(file: string, tz = 'UTC'): Listing {
  const res = spawnSync('ssh-keygen', ['-L', '-f', file], { encoding: 'utf8', env: { ...process.env, TZ: tz } });
  assert.equal(res.status, 0, `ssh-keygen -L failed: ${res.stderr}`);
  const lines = res.stdout.replace(/\n$/, '').split('\n');
  assert.equal(lines.shift(), `${file}:`);
  const out: Listing = {};
  let list: string[] | undefined;
  for (const line of lines) {
    const field = /^ {8}([A-Za-z][A-Za-z ]*): ?(.*)$/.exec(line);
    const item = /^ {16}(\S.*)$/.exec(line);
    if (field) {
      const [, name, value] = field as unknown as [string, string, string];
      assert.ok(!(name in out), `field ${name} printed twice`);
      if (value === '') out[name] = list = [];
      else {
        out[name] = value;
        list = undefined;
      }
    } else if (item && list) {
      list.push(item[1]!);
    } else {
      assert.fail(`unexpected ssh-keygen -L line ${JSON.stringify(line)}`);
    }
  }
  return out;
}
