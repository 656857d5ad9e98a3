// What a certificate may say, as plain rules the policy checker and the
// certificate encoder share: extension names, principals, source addresses,
// and which key types are FIDO security keys.

import { isIPv4, isIPv6 } from 'node:net';

export const KNOWN_EXTENSIONS = [
  'no-touch-required',
  'permit-X11-forwarding',
  'permit-agent-forwarding',
  'permit-port-forwarding',
  'permit-pty',
  'permit-user-rc',
] as const;

/**
 * The public key types of FIDO security keys (PROTOCOL.u2f): the private key
 * stays in the authenticator, and every signature says whether the user was
 * present (touch) and verified (PIN or biometric).
 */
export const SECURITY_KEY_TYPES = ['sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com'] as const;

export function isSecurityKeyType(type: string): boolean {
  return (SECURITY_KEY_TYPES as readonly string[]).includes(type);
}

// A principal is compared byte for byte with a login name (or a line of an
// AuthorizedPrincipalsFile). Characters outside this set are either never part
// of a user name or have meaning to sshd (',' separates, '*' '?' '!' match).
export const PRINCIPAL_MAX_LENGTH = 256;
const PRINCIPAL = new RegExp(`^[A-Za-z0-9_][A-Za-z0-9._@+-]{0,${PRINCIPAL_MAX_LENGTH - 1}}$`);

export function validPrincipal(p: string): boolean {
  return PRINCIPAL.test(p);
}

/** An address as bytes (4 or 16), or null when it is not a plain IPv4/IPv6 address. */
function addressBytes(addr: string): Buffer | null {
  // node:net refuses octets with leading zeros, which getaddrinfo would read as octal.
  if (isIPv4(addr)) return Buffer.from(addr.split('.').map(Number));
  if (!isIPv6(addr) || addr.includes('%')) return null;
  let text = addr;
  const v4Tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4Tail) {
    const b = Buffer.from(v4Tail[1]!.split('.').map(Number));
    text = text.slice(0, -v4Tail[1]!.length) + `${b.readUInt16BE(0).toString(16)}:${b.readUInt16BE(2).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

/**
 * Checks one `source-address` value: a comma-separated list of addresses or
 * CIDR blocks, as sshd's addr_match_cidr_list accepts them (no host bits set
 * under the mask — sshd refuses the whole certificate otherwise).
 */
export function validSourceAddress(value: string): boolean {
  if (value === '' || value.length > 4096) return false;
  return value.split(',').every((entry) => {
    const [addr, bits, ...more] = entry.split('/');
    if (more.length > 0 || !addr) return false;
    const bytes = addressBytes(addr);
    if (!bytes) return false;
    if (bits === undefined) return true;
    if (!/^(0|[1-9]\d{0,2})$/.test(bits) || Number(bits) > bytes.length * 8) return false;
    const prefix = Number(bits);
    for (let i = 0; i < bytes.length * 8; i++) {
      if (i >= prefix && (bytes[i >> 3]! & (0x80 >> (i & 7))) !== 0) return false;
    }
    return true;
  });
}

