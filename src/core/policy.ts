// Reading the policy file: YAML → checked Policy, or every problem at once,
// each as `path: message` (e.g. `roles.web-prod.auto_approve[1].max_duration:
// must be a duration such as 30m`). Unknown keys are errors: a typo must not
// silently weaken a policy.

import { createHash } from 'node:crypto';
import { Parser, parseDocument } from 'yaml';
import { z } from 'zod';
import { KNOWN_EXTENSIONS, PRINCIPAL_MAX_LENGTH, validPrincipal, validSourceAddress } from './cert-options.js';
import { formatDuration, LONGEST_GRANT, parseDuration } from './duration.js';
import { GROUP_NAME, USER_NAME } from './names.js';
import { NOTIFICATION_EVENTS, type Policy, type Role, type Subject, type TimeWindow } from './policy-types.js';

export class PolicyError extends Error {
  override name = 'PolicyError';
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
  }
}

const ROLE_NAME = /^[a-z0-9][a-z0-9_.-]{0,63}$/;
const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

const duration = z.string().superRefine((v, ctx) => {
  const seconds = parseDuration(v);
  if (seconds === null) ctx.addIssue({ code: 'custom', message: 'must be a duration such as 30m, 2h or 1h30m' });
  else if (seconds > LONGEST_GRANT) ctx.addIssue({ code: 'custom', message: `must be at most ${formatDuration(LONGEST_GRANT)}` });
});
const groupName = z.string().regex(GROUP_NAME, 'must be a group name (lower case, digits, _ . -)');
const userName = z.string().regex(USER_NAME, 'must be a user name (lower case, digits, _ . -)');
const subject = z.string().refine((v) => {
  const m = /^(group|user):(.*)$/.exec(v);
  return !!m && (m[1] === 'group' ? GROUP_NAME : USER_NAME).test(m[2]!);
}, 'must be group:NAME or user:NAME');
const principal = z.string().superRefine((p, ctx) => {
  if (validPrincipal(p)) return;
  const why =
    p === '' ? 'is empty'
    : p.length > PRINCIPAL_MAX_LENGTH ? `is ${p.length} characters long (at most ${PRINCIPAL_MAX_LENGTH})`
    : /[,]/.test(p) ? 'contains a comma (sshd would read two principals)'
    : /[*?!]/.test(p) ? 'contains a wildcard'
    : /\s/.test(p) ? 'contains whitespace or a newline'
    : /[\x00-\x1f\x7f]/.test(p) ? 'contains a NUL or another control character'
    : /^[-@.+]/.test(p) ? `starts with "${p[0]}" (a login name starts with a letter, digit or _)`
    : 'has characters a login name cannot have';
  // JSON quoting shows control characters escaped; a long one is cut so the message stays one readable line.
  const shown = JSON.stringify(p.length > 64 ? `${p.slice(0, 64)}…` : p);
  ctx.addIssue({ code: 'custom', message: `principal ${shown} ${why}` });
});
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time HH:MM between 00:00 and 23:59');
const timezone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'must be an IANA time zone such as Europe/Berlin');
const unique = <T extends z.ZodTypeAny>(item: T, what: string) => z.array(item).refine((a) => new Set(a).size === a.length, `lists the same ${what} twice`);

const windowSchema = z.strictObject({ days: unique(z.enum(DAY_NAMES), 'day').min(1).optional(), start: hhmm, end: hhmm, timezone: timezone.optional() });
const autoRuleSchema = z.strictObject({
  groups: unique(groupName, 'group').optional(),
  users: unique(userName, 'user').optional(),
  max_duration: duration.optional(),
  require_ticket: z.boolean().optional(),
  window: windowSchema.optional(),
});
const roleSchema = z.strictObject({
  description: z.string().max(500).optional(),
  principals: unique(principal, 'principal').min(1, 'must list at least one principal (sshd refuses certificates without)'),
  requesters: unique(subject, 'requester').min(1, 'must name at least one group: or user:'),
  max_duration: duration.optional(),
  default_duration: duration.optional(),
  require_ticket: z.boolean().optional(),
  approval: z.strictObject({ approvers: unique(subject, 'approver').min(1), required: z.number().int().min(1).max(100), step_up: z.enum(['required', 'optional']).optional() }).optional(),
  auto_approve: z.array(autoRuleSchema).optional(),
  // Requests only from sessions opened with a passkey; totp names what every session has already.
  require_mfa: z.enum(['totp', 'webauthn']).optional(),
  // Certificates only for FIDO security keys, each with verify-required; any (the default) takes every accepted key type.
  require_key: z.enum(['any', 'fido']).optional(),
  break_glass: z.strictObject({ groups: unique(groupName, 'group').optional(), users: unique(userName, 'user').optional(), max_duration: duration }).optional(),
  certificate: z
    .strictObject({
      extensions: unique(z.enum(KNOWN_EXTENSIONS), 'extension').optional(),
      source_address: z.array(z.string().refine((a) => !a.includes(',') && validSourceAddress(a), 'must be an address or CIDR block such as 10.0.0.0/8')).optional(),
      force_command: z.string().min(1).max(4096).refine((c) => !/[\0\r\n]/.test(c), 'must be one line').nullable().optional(),
    })
    .optional(),
});
const mfaMethod = z.enum(['totp', 'webauthn']);
const fileSchema = z.strictObject({
  // One method for both, or each on its own; totp (the default) is what every user has from the start.
  mfa: z.union([mfaMethod, z.strictObject({ login: mfaMethod.optional(), approval: mfaMethod.optional() })]).optional(),
  defaults: z.strictObject({ max_duration: duration.optional(), request_ttl: duration.optional(), clock_skew: duration.optional(), min_reason_length: z.number().int().min(1).max(200).optional() }).optional(),
  roles: z.record(z.string(), roleSchema),
  notifications: z
    .strictObject({
      webhooks: z.array(z.strictObject({ url: z.string().refine((u) => /^https?:\/\/./.test(u) && URL.canParse(u), 'must be an http(s) URL'), events: unique(z.enum(NOTIFICATION_EVENTS), 'event').min(1).optional() })).optional(),
    })
    .optional(),
});

function pathOf(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, k) => (typeof k === 'number' ? `${acc}[${k}]` : acc ? `${acc}.${String(k)}` : String(k)), '') || '(top level)';
}

const secs = (d: string | undefined, fallback: number) => (d === undefined ? fallback : parseDuration(d)!);
const minutes = (t: string) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3));
const subjects = (list: string[]): Subject[] => list.map((s) => ({ kind: s.startsWith('group:') ? 'group' : 'user', name: s.slice(s.indexOf(':') + 1) }));

/** Far more than any policy needs (a role's window is 5 levels down); far less than would exhaust the stack. */
const MAX_DEPTH = 32;
const MAX_CHARS = 1024 * 1024;

/**
 * How deeply the YAML text nests collections, from yaml's syntax tree (read
 * without recursion). The composer recurses once per level: a file nested a few
 * thousand levels deep overflows the stack, and a stack overflow there can leave
 * V8 unable to run the next parse at all, so such a file must never reach it.
 */
function nestingDepth(text: string): number {
  let max = 0;
  const todo: Array<[unknown, number]> = [];
  for (const token of new Parser().parse(text)) todo.push([token, 0]);
  for (let item = todo.pop(); item; item = todo.pop()) {
    const [node, depth] = item;
    const type = (node as { type?: unknown }).type;
    const here = type === 'block-map' || type === 'block-seq' || type === 'flow-collection' ? depth + 1 : depth;
    if (here > max) max = here;
    if (max > MAX_DEPTH) break;
    for (const child of Array.isArray(node) ? node : Object.values(node as object)) if (child !== null && typeof child === 'object') todo.push([child, here]);
  }
  return max;
}

export function parsePolicy(text: string): Policy {
  if (text.length > MAX_CHARS) throw new PolicyError([`(top level): the file is longer than ${MAX_CHARS} characters`]);
  if (nestingDepth(text) > MAX_DEPTH) throw new PolicyError([`YAML: nested more than ${MAX_DEPTH} levels deep`]);
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new PolicyError(doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  let data: unknown;
  try {
    // Aliases are expanded here: one to an anchor not yet defined, or so many that they multiply the document, is refused.
    data = doc.toJS({ maxAliasCount: 50 });
  } catch (e) {
    throw new PolicyError([`YAML: ${(e as Error).message.split('\n')[0]}`]);
  }
  const parsed = fileSchema.safeParse(data ?? {});
  if (!parsed.success) throw new PolicyError(parsed.error.issues.map((i) => `${pathOf(i.path)}: ${i.message}`));
  const raw = parsed.data;
  const problems: string[] = [];
  const d = raw.defaults ?? {};
  const defaults = {
    maxDuration: secs(d.max_duration, 8 * 3600),
    requestTtl: secs(d.request_ttl, 24 * 3600),
    clockSkew: secs(d.clock_skew, 60),
    minReasonLength: d.min_reason_length ?? 10,
  };
  if (defaults.clockSkew > 3600) problems.push('defaults.clock_skew: must be at most 1h');

  const roles = new Map<string, Role>();
  const names = Object.keys(raw.roles);
  if (names.length === 0) problems.push('roles: must define at least one role');
  for (const name of names) {
    const r = raw.roles[name]!;
    const at = `roles.${name}`;
    if (!ROLE_NAME.test(name)) problems.push(`${at}: role names are lower case, digits, _ . - (at most 64)`);
    const maxDuration = secs(r.max_duration, defaults.maxDuration);
    const within = (value: number, cap: number, path: string, capName: string) => {
      if (value > cap) problems.push(`${path}: ${formatDuration(value)} is more than ${capName} (${formatDuration(cap)})`);
    };
    within(maxDuration, defaults.maxDuration, `${at}.max_duration`, 'defaults.max_duration');
    const defaultDuration = secs(r.default_duration, Math.min(3600, maxDuration));
    within(defaultDuration, maxDuration, `${at}.default_duration`, 'the role max_duration');
    const autoApprove = (r.auto_approve ?? []).map((rule, index) => {
      // A rule's cap above the role's is allowed (examples/policy.yaml has one: 6h under a 4h role): the role's cap still applies.
      const ruleMax = Math.min(secs(rule.max_duration, maxDuration), maxDuration);
      let window: TimeWindow | null = null;
      if (rule.window) {
        if (rule.window.start === rule.window.end) problems.push(`${at}.auto_approve[${index}].window: start and end must differ`);
        window = { days: rule.window.days ?? [...DAY_NAMES], startMinute: minutes(rule.window.start), endMinute: minutes(rule.window.end), timezone: rule.window.timezone ?? 'UTC' };
      }
      return { index, groups: rule.groups ?? [], users: rule.users ?? [], maxDuration: ruleMax, requireTicket: rule.require_ticket ?? false, window };
    });
    let breakGlass: Role['breakGlass'] = null;
    if (r.break_glass) {
      const bg = r.break_glass;
      if (!(bg.groups?.length || bg.users?.length)) problems.push(`${at}.break_glass: must name groups or users`);
      breakGlass = { groups: bg.groups ?? [], users: bg.users ?? [], maxDuration: secs(bg.max_duration, 0) };
      within(breakGlass.maxDuration, maxDuration, `${at}.break_glass.max_duration`, 'the role max_duration');
    }
    const requireKey = r.require_key === 'fido' ? 'fido' : null;
    const extensions = r.certificate?.extensions ?? ['permit-pty'];
    if (requireKey && extensions.includes('no-touch-required')) {
      // A certificate asking sshd to skip the touch would undo what the role asks for.
      problems.push(`${at}.certificate.extensions: no-touch-required contradicts require_key: fido (a touch and a PIN at every login)`);
    }
    if (!r.approval && autoApprove.length === 0 && !breakGlass) {
      problems.push(`${at}: has no approval, auto_approve or break_glass: no one could ever get this role`);
    }
    roles.set(name, {
      name,
      description: r.description ?? '',
      principals: r.principals,
      requesters: subjects(r.requesters),
      maxDuration,
      defaultDuration,
      requireTicket: r.require_ticket ?? false,
      approval: r.approval ? { approvers: subjects(r.approval.approvers), required: r.approval.required, stepUp: r.approval.step_up ?? 'required' } : null,
      autoApprove,
      breakGlass,
      certificate: {
        extensions,
        sourceAddress: r.certificate?.source_address ?? [],
        forceCommand: r.certificate?.force_command ?? null,
      },
      requireMfa: r.require_mfa === 'webauthn' ? 'webauthn' : null,
      requireKey,
    });
  }
  if (problems.length > 0) throw new PolicyError(problems);
  const mfa = typeof raw.mfa === 'string' ? { login: raw.mfa, approval: raw.mfa } : { login: raw.mfa?.login ?? 'totp', approval: raw.mfa?.approval ?? 'totp' };
  return {
    defaults,
    roles,
    mfa,
    webhooks: (raw.notifications?.webhooks ?? []).map((w) => ({ url: w.url, events: w.events ?? [...NOTIFICATION_EVENTS] })),
    digest: createHash('sha256').update(text).digest('hex'),
  };
}
