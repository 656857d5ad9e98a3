// The policy as the program uses it, after the YAML file (README, "Access:
// policy, requests, grants"; examples/policy.yaml shows every field) has been
// parsed and checked. Durations are whole seconds.

/** Who a rule names: `group:NAME` or `user:NAME` in the file. */
export interface Subject {
  kind: 'group' | 'user';
  name: string;
}

export interface TimeWindow {
  /** Days the window is open, as `mon`..`sun`; all days when absent in the file. */
  days: Array<'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun'>;
  /** Minutes after local midnight, start inclusive, end exclusive; end < start spans midnight. */
  startMinute: number;
  endMinute: number;
  /** IANA time zone, e.g. `Europe/Berlin`; `UTC` when absent. */
  timezone: string;
}

export interface AutoApproveRule {
  /** Position in the role's `auto_approve` list, for naming the rule (`auto_approve[1]`). */
  index: number;
  /** The requester must be in one of these groups (or listed in `users`); both empty = anyone who may request. */
  groups: string[];
  users: string[];
  maxDuration: number;
  requireTicket: boolean;
  window: TimeWindow | null;
}

export interface ApprovalRule {
  approvers: Subject[];
  /** Distinct approvers needed; the requester never counts. */
  required: number;
  /**
   * `required` (the default): an approval counts only with a fresh second factor given for that
   * very request, so a stolen approver session alone approves nothing. `optional`: accepted, not needed.
   */
  stepUp: 'required' | 'optional';
}

export interface BreakGlassRule {
  groups: string[];
  users: string[];
  maxDuration: number;
}

export interface CertificateOptions {
  extensions: string[];
  /** CIDR blocks for the `source-address` critical option; empty = no restriction. */
  sourceAddress: string[];
  forceCommand: string | null;
}

export interface Role {
  name: string;
  description: string;
  principals: string[];
  requesters: Subject[];
  maxDuration: number;
  defaultDuration: number;
  /** Every request for this role must name a ticket. */
  requireTicket: boolean;
  approval: ApprovalRule | null;
  autoApprove: AutoApproveRule[];
  breakGlass: BreakGlassRule | null;
  certificate: CertificateOptions;
  /** `webauthn`: requests for this role are taken only from sessions opened with a passkey; null = no such rule. */
  requireMfa: MfaMethod | null;
  /**
   * `fido`: certificates only for FIDO security-key public keys, and each carries the
   * `verify-required` critical option (sshd asks the key for a PIN or biometric check at every
   * login); null = any accepted key type.
   */
  requireKey: KeyRequirement | null;
}

/** What a role asks of the keys it certifies: `fido`, FIDO security keys only. */
export type KeyRequirement = 'fido';

/** A second factor: a code from an authenticator app (TOTP) or a passkey / security key (WebAuthn). */
export type MfaMethod = 'totp' | 'webauthn';

export interface MfaRules {
  /** What a web sign-in must end with (`webauthn`: a passkey after the password and code, or after the identity provider). */
  login: MfaMethod;
  /** What an approval's step-up must be (`webauthn`: a passkey assertion bound to the request). */
  approval: MfaMethod;
}

export interface WebhookTarget {
  url: string;
  /** Events sent to this URL; all events when absent in the file. */
  events: NotificationEvent[];
}

export const NOTIFICATION_EVENTS = ['request.created', 'request.approved', 'request.denied', 'request.expired', 'request.cancelled', 'request.break_glass', 'request.extended'] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

export interface Policy {
  defaults: {
    maxDuration: number;
    requestTtl: number;
    clockSkew: number;
    /** Shortest reason accepted, in characters. */
    minReasonLength: number;
  };
  roles: ReadonlyMap<string, Role>;
  /** Second factors policy asks for; both `totp` unless the file says otherwise. */
  mfa: MfaRules;
  webhooks: WebhookTarget[];
  /** SHA-256 of the file's bytes: stored with every decision, so an auditor knows which policy decided. */
  digest: string;
}

export interface Requester {
  name: string;
  groups: readonly string[];
}

export interface AccessRequest {
  role: string;
  /** Seconds asked for. */
  duration: number;
  reason: string;
  ticket: string | null;
  breakGlass: boolean;
}

export type Outcome = 'approved' | 'pending' | 'denied';

export interface Decision {
  outcome: Outcome;
  /** The rule that decided, e.g. `auto_approve[0]`, `approval`, `break-glass`, `not-a-requester`. */
  rule: string;
  /** For people: why, e.g. "auto-approved: member of oncall and 2h ≤ 6h". */
  reason: string;
  /** Approvals still needed when pending, else 0. */
  requiredApprovals: number;
}
