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

/** A field's hint, `<id>-hint`, which the field names in aria-describedby. */
export const Hint: FC<{ id: string; hint?: Child }> = ({ id, hint }) =>
  hint ? (
    <p class="hint" id={`${id}-hint`}>
      {hint}
    </p>
  ) : null;

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
    <Hint id={p.id} hint={p.hint} />
  </div>
);

export const TextArea: FC<Omit<FieldProps, 'type' | 'inputmode' | 'pattern' | 'autocomplete' | 'class'>> = (p) => (
  <div class="field">
    <label for={p.id}>{p.label}</label>
    <textarea id={p.id} name={p.name} required={p.required} maxlength={p.maxlength} placeholder={p.placeholder} aria-invalid={p.invalid ? 'true' : undefined} aria-describedby={describedBy(p.id, p.hint, p.invalid, p.errorId)}>
      {p.value ?? ''}
    </textarea>
    <Hint id={p.id} hint={p.hint} />
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

/** A column's heading, and optionally a class for the heading and its cells (`num` aligns right, `mono` for ids). */
export type Column = string | { label: string; class: string };

interface DataTableProps {
  caption: Child;
  /** Names the scrolling region (defaults to the caption when that is text). */
  label?: string;
  columns: Column[];
  rows: Child[][];
  /** Shown instead of the table when there are no rows. */
  empty?: Child;
}

/** Every table of the pages: caption, column headings, one row per item; an empty cell shows a dash. */
export const DataTable: FC<DataTableProps> = ({ caption, label, columns, rows, empty }) => {
  if (rows.length === 0 && empty !== undefined) return <p class="muted">{empty}</p>;
  const cols = columns.map((c) => (typeof c === 'string' ? { label: c, class: undefined } : c));
  return (
    <Scroll label={label ?? String(caption)}>
      <table>
        <caption>{caption}</caption>
        <thead>
          <tr>
            {cols.map((c) => (
              <th scope="col" class={c.class}>
                {c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr>
              {row.map((cell, i) => (
                <td class={cols[i]?.class}>{cell ?? '–'}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </Scroll>
  );
};

/** A form that is one button posting to `action` with the session's CSRF token (cancel, give up access). */
export const PostButton: FC<{ action: string; csrf: string; label: string }> = ({ action, csrf, label }) => (
  <form method="post" action={action} class="actions">
    <Csrf token={csrf} />
    <button type="submit">{label}</button>
  </form>
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

interface FilterFormProps {
  action: string;
  label: string;
  button: string;
  /** One hint for the time fields, which name `<id>` in aria-describedby. */
  hint: { id: string; text: string };
}

/** A GET form of filters (a search is a link one can share and reload), its button, and the hint its time fields share. */
export const FilterForm: FC<PropsWithChildren<FilterFormProps>> = ({ action, label, button, hint, children }) => (
  <form method="get" action={action} class="filters" role="search" aria-label={label}>
    {children}
    <div class="field">
      <button type="submit" class="primary">
        {button}
      </button>
    </div>
    <p class="hint wide" id={hint.id}>
      {hint.text}
    </p>
  </form>
);

/** The passkey step that ends a sign-in: one button; the page's script asks the authenticator and posts its answer. */
export const PasskeySignInForm: FC<{ action: string; csrf: string; options: string }> = ({ action, csrf, options }) => (
  <form method="post" action={action} class="stack" data-webauthn="authenticate" data-options={options}>
    <input type="hidden" name="csrf" value={csrf} />
    <input type="hidden" name="webauthn" value="" />
    <p class="status" data-webauthn-status role="status" aria-live="polite"></p>
    <button type="submit" class="primary">
      Use your passkey
    </button>
  </form>
);
