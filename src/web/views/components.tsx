// Small pieces the pages share: times, form fields with their labels, alerts,
// status badges.

import type { Child, FC, PropsWithChildren } from 'hono/jsx';
import { formatDuration } from '../../core/duration.js';

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-11-22 12:00 UTC`: what a page says before the script turns it into the viewer's zone. */
export function utcText(iso: string, seconds = false): string {
  const d = new Date(iso);
  const base = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
  return `${seconds ? `${base}:${pad(d.getUTCSeconds())}` : base} UTC`;
}

/** A time: machine-readable datetime, UTC on hover, the viewer's zone once the script runs. */
export const Time: FC<{ iso: string | null | undefined }> = ({ iso }) =>
  iso ? (
    <time datetime={iso} title={`UTC ${utcText(iso, true).slice(0, -4)}`}>
      {utcText(iso)}
    </time>
  ) : (
    <span class="muted">–</span>
  );

/** How long until `iso`, e.g. `1h12m left`, or `ended`. */
export function timeLeft(iso: string, now: Date): string {
  const s = Math.floor((Date.parse(iso) - now.getTime()) / 1000);
  return s > 0 ? `${formatDuration(s < 60 ? s : s - (s % 60))} left` : 'ended';
}

export const Csrf: FC<{ token: string }> = ({ token }) => <input type="hidden" name="csrf" value={token} />;

export const Alert: FC<{ message: string | null | undefined; id?: string }> = ({ message, id }) =>
  message ? (
    <div class="alert" role="alert" id={id}>
      {message}
    </div>
  ) : null;

export const Badge: FC<{ status: string; label?: string }> = ({ status, label }) => <span class={`badge s-${status.replace(/[^a-z_-]/g, '')}`}>{label ?? status}</span>;

interface FieldProps {
  id: string;
  name: string;
  label: string;
  value?: string | null;
  hint?: Child;
  invalid?: boolean;
  /** Describes the field with an error shown elsewhere on the page. */
  errorId?: string;
  /** Describes the field with a hint shown elsewhere (one hint for several fields). */
  describedBy?: string;
  type?: 'text' | 'password' | 'search';
  required?: boolean;
  autocomplete?: string;
  inputmode?: 'numeric' | 'text';
  pattern?: string;
  maxlength?: number;
  placeholder?: string;
  class?: string;
  autofocus?: boolean;
}

const describedBy = (id: string, hint: unknown, invalid?: boolean, errorId?: string, other?: string) =>
  [hint ? `${id}-hint` : '', other ?? '', invalid && errorId ? errorId : ''].filter(Boolean).join(' ') || undefined;

export const Field: FC<FieldProps> = (p) => (
  <div class="field">
    <label for={p.id}>{p.label}</label>
    <input
      type={p.type ?? 'text'}
      id={p.id}
      name={p.name}
      value={p.value ?? ''}
      required={p.required}
      autocomplete={p.autocomplete}
      inputmode={p.inputmode}
      pattern={p.pattern}
      maxlength={p.maxlength}
      placeholder={p.placeholder}
      class={p.class}
      autofocus={p.autofocus}
      aria-invalid={p.invalid ? 'true' : undefined}
      aria-describedby={describedBy(p.id, p.hint, p.invalid, p.errorId, p.describedBy)}
    />
    {p.hint && (
      <p class="hint" id={`${p.id}-hint`}>
        {p.hint}
      </p>
    )}
  </div>
);

export const TextArea: FC<Omit<FieldProps, 'type' | 'inputmode' | 'pattern' | 'autocomplete' | 'class'>> = (p) => (
  <div class="field">
    <label for={p.id}>{p.label}</label>
    <textarea id={p.id} name={p.name} required={p.required} maxlength={p.maxlength} placeholder={p.placeholder} aria-invalid={p.invalid ? 'true' : undefined} aria-describedby={describedBy(p.id, p.hint, p.invalid, p.errorId)}>
      {p.value ?? ''}
    </textarea>
    {p.hint && (
      <p class="hint" id={`${p.id}-hint`}>
        {p.hint}
      </p>
    )}
  </div>
);

/** A six-digit authenticator code field. */
export const CodeField: FC<{ id: string; label?: string; hint?: Child; invalid?: boolean; errorId?: string }> = ({ id, label, hint, invalid, errorId }) => (
  <Field id={id} name="totp" label={label ?? 'Authenticator code'} class="code" inputmode="numeric" pattern="[0-9]{6}" maxlength={6} autocomplete="one-time-code" required hint={hint} invalid={invalid} errorId={errorId} />
);

/** A table that scrolls sideways on a narrow screen instead of squeezing; focusable so the keyboard can scroll it. */
export const Scroll: FC<PropsWithChildren<{ label: string }>> = ({ label, children }) => (
  <div class="scroll" tabindex={0} role="region" aria-label={label}>
    {children}
  </div>
);

export const Facts: FC<{ rows: Array<[string, Child]> }> = ({ rows }) => (
  <dl class="facts">
    {rows.map(([k, v]) => (
      <>
        <dt>{k}</dt>
        <dd>{v}</dd>
      </>
    ))}
  </dl>
);
