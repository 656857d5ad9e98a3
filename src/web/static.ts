// The pages' only two static files, kept as text here (no build step, no
// files to find at run time). Their URLs carry a hash of their content, so
// browsers may cache them for good and a new version is fetched at once.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const CSS = `
:root { --fg: #1b1f24; --muted: #57606a; --bg: #fff; --line: #d0d7de; --panel: #f6f8fa; --link: #0550ae;
  --ok: #116329; --ok-bg: #dafbe1; --warn: #7d4e00; --warn-bg: #fff8c5; --bad: #a40e26; --bad-bg: #ffebe9; --focus: #0969da; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--link); }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem 1rem; z-index: 1; }
.skip:focus { left: .5rem; }
header.site { background: #24292f; color: #fff; padding: .5rem 1rem; display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; }
header.site a { color: #fff; }
header.site .brand { font-weight: 700; text-decoration: none; margin-right: auto; }
header.site nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
header.site nav a[aria-current="page"] { font-weight: 700; text-underline-offset: .3em; }
header.site form { margin: 0; }
header.site button { background: transparent; color: #fff; border: 1px solid #8c959f; }
.who { color: #d0d7de; font-size: .9rem; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem; }
h2 { font-size: 1.25rem; margin: 1.5rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 1rem 0 .25rem; }
.muted, .hint { color: var(--muted); }
.hint { font-size: .9rem; margin: .1rem 0 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border-bottom: 1px solid var(--line); padding: .4rem .5rem; text-align: left; vertical-align: top; }
th { background: var(--panel); white-space: nowrap; }
td.num, th.num { text-align: right; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; overflow-wrap: anywhere; }
th.mono { font-family: inherit; font-size: inherit; } /* a column's class styles its cells, not its heading */
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 1rem; margin: 1rem 0; background: var(--bg); }
.badge { display: inline-block; padding: 0 .5rem; border-radius: 1rem; font-size: .85rem; font-weight: 600; border: 1px solid currentColor; }
.s-approved, .s-ok { color: var(--ok); background: var(--ok-bg); }
.s-pending, .s-open { color: var(--warn); background: var(--warn-bg); }
.s-denied, .s-expired, .s-cancelled, .s-failed, .s-refused, .s-bad { color: var(--bad); background: var(--bad-bg); }
.alert { border: 1px solid var(--bad); background: var(--bad-bg); color: var(--bad); padding: .75rem 1rem; border-radius: 6px; margin: 1rem 0; }
.notice { border: 1px solid var(--line); background: var(--panel); padding: .75rem 1rem; border-radius: 6px; margin: 1rem 0; }
.decision { border-left: 4px solid var(--line); padding: .5rem 1rem; background: var(--panel); margin: 1rem 0; }
.decision.s-approved { border-color: var(--ok); } .decision.s-pending { border-color: var(--warn); } .decision.s-denied { border-color: var(--bad); }
form.stack .field { margin: 0 0 1rem; max-width: 36rem; }
form.filters { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: .5rem 1rem; align-items: end; }
form.filters .field { margin: 0; }
form.filters .wide { grid-column: 1 / -1; }
td time { white-space: nowrap; }
main dd, main td, main li { white-space: pre-line; } /* line breaks in reasons and comments */
label { display: block; font-weight: 600; margin-bottom: .2rem; }
label.check { display: flex; gap: .5rem; align-items: center; font-weight: 400; }
fieldset.verdict { border: 0; padding: 0; margin: 0 0 1rem; display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; }
fieldset.verdict legend { font-weight: 600; padding: 0; margin-bottom: .2rem; width: 100%; }
input[type=radio], input[type=checkbox] { width: 1.15rem; height: 1.15rem; }
input[type=text], input[type=password], input[type=search], select, textarea { width: 100%; font: inherit; padding: .45rem .5rem; border: 1px solid #8c959f; border-radius: 6px; background: #fff; color: var(--fg); }
input[aria-invalid="true"], textarea[aria-invalid="true"], select[aria-invalid="true"] { border-color: var(--bad); }
textarea { min-height: 5rem; }
input.code { max-width: 9rem; letter-spacing: .15em; }
button, .button { font: inherit; font-weight: 600; padding: .45rem 1rem; border-radius: 6px; border: 1px solid #8c959f; background: var(--panel); color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary, .button.primary { background: #1f883d; border-color: #1a7f37; color: #fff; }
ul.sso { list-style: none; padding: 0; margin: 0 0 1.5rem; display: flex; flex-wrap: wrap; gap: .5rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .5rem 0; }
.inline { display: inline; }
ul.plain { list-style: none; padding: 0; }
.status { min-height: 1.5em; }
@media (max-width: 40rem) {
  body { font-size: 15px; }
  main { padding: .75rem; }
  dl.facts { grid-template-columns: 1fr; }
  dl.facts dd { margin-bottom: .4rem; }
  header.site .brand { width: 100%; }
}
`;

/*
 * Times: pages show every time as <time datetime="…Z" title="UTC …">…UTC</time>,
 * and this script rewrites the text into the viewer's own zone, leaving UTC in
 * the title for hover. Chosen over asking the browser's zone at login because
 * it follows the device (a laptop that travels, a phone set differently),
 * needs no session state or server-side trust in a client-sent zone name, and
 * without JavaScript the page still reads correctly, in UTC, labelled as such.
 */
const TIME_JS = `"use strict";
(function () {
  var fmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZoneName: "short" });
  var times = document.querySelectorAll("time[datetime]");
  for (var i = 0; i < times.length; i++) {
    var d = new Date(times[i].getAttribute("datetime"));
    if (!isNaN(d.getTime())) times[i].textContent = fmt.format(d);
  }
})();
`;

/*
 * Passkeys: forms marked data-webauthn="register" or "authenticate" carry the
 * ceremony's options (made by the server when the page was shown, with its
 * single-use challenge) in data-options. On submit the script asks the
 * browser's authenticator through @simplewebauthn/browser, puts the answer in
 * the form's hidden "webauthn" field and sends the form as it is; no request
 * of its own (the CSP has no connect-src), nothing inline.
 */
const PASSKEY_JS = `"use strict";
(function () {
  var lib = window.SimpleWebAuthnBrowser;
  var forms = document.querySelectorAll("form[data-webauthn]");
  for (var i = 0; i < forms.length; i++) hook(forms[i]);
  function hook(form) {
    var status = form.querySelector("[data-webauthn-status]");
    var out = form.querySelector("input[name=webauthn]");
    var say = function (t) { if (status) status.textContent = t; };
    if (!lib || !window.PublicKeyCredential) { say("This browser cannot use passkeys."); return; }
    form.addEventListener("submit", function (ev) {
      if (out.value) return;
      ev.preventDefault();
      var options = JSON.parse(form.getAttribute("data-options"));
      var run = form.getAttribute("data-webauthn") === "register" ? lib.startRegistration({ optionsJSON: options }) : lib.startAuthentication({ optionsJSON: options });
      say("Waiting for your passkey…");
      run.then(function (answer) {
        out.value = JSON.stringify(answer);
        say("Sending…");
        HTMLFormElement.prototype.submit.call(form);
      }, function (e) {
        say("The passkey did not answer (" + (e && e.name ? e.name : "error") + "). Try again.");
      });
    });
  }
})();
`;

/** @simplewebauthn/browser's own bundle, as the package ships it (it defines window.SimpleWebAuthnBrowser). */
function webauthnBundle(): string {
  const main = createRequire(import.meta.url).resolve('@simplewebauthn/browser');
  return readFileSync(path.join(path.dirname(main), '..', 'dist', 'bundle', 'index.umd.min.js'), 'utf8');
}

interface StaticFile {
  path: string;
  type: string;
  body: string;
}

function file(name: string, ext: string, type: string, body: string): StaticFile {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { path: `/ui/static/${name}-${hash}.${ext}`, type, body };
}

// A key on a dark tile; browsers ask for an icon, and a 404 would be noise in every log.
const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#24292f"/><circle cx="11" cy="16" r="5" fill="none" stroke="#fff" stroke-width="3"/><path d="M16 16h11v5M23 16v4" fill="none" stroke="#fff" stroke-width="3"/></svg>\n`;

export const STYLESHEET = file('app', 'css', 'text/css; charset=utf-8', CSS);
export const TIME_SCRIPT = file('local-time', 'js', 'text/javascript; charset=utf-8', TIME_JS);
export const ICON = file('icon', 'svg', 'image/svg+xml', ICON_SVG);
export const WEBAUTHN_LIB = file('simplewebauthn-browser', 'js', 'text/javascript; charset=utf-8', webauthnBundle());
export const PASSKEY_SCRIPT = file('passkey', 'js', 'text/javascript; charset=utf-8', PASSKEY_JS);
export const STATIC_FILES: readonly StaticFile[] = [STYLESHEET, TIME_SCRIPT, ICON, WEBAUTHN_LIB, PASSKEY_SCRIPT];
