import { COPY_SCRIPT, STYLE } from './assets.js';
import { html, raw, type SafeHtml } from './html.js';
import type { Flash, Session } from './session.js';

export type Section = 'accounts' | 'credentials' | 'deliveries' | 'relay';

const SECTIONS: { id: Section; label: string }[] = [
  { id: 'accounts', label: 'Accounts' },
  { id: 'credentials', label: 'Credentials' },
  { id: 'deliveries', label: 'Deliveries' },
  { id: 'relay', label: 'SMTP relay' },
];

export interface PageOptions {
  title: string;
  /** null on the login page: no navigation, no sign-out. */
  session: Session | null;
  section?: Section;
  flash?: Flash | null;
  body: SafeHtml;
  /** Include the copy-button script. */
  copy?: boolean;
}

/** The frame of every page: skip link, navigation, one h1, the flash message. */
export function page(o: PageOptions): string {
  const nav = o.session
    ? html`<header>
  <strong>mailgate</strong>
  <nav aria-label="Sections"><ul>${SECTIONS.map(
    (s) => html`<li><a href="/admin/${s.id}"${s.id === o.section ? raw(' aria-current="page"') : ''}>${s.label}</a></li>`,
  )}</ul></nav>
  ${postForm('/admin/logout', o.session, html`<button type="submit">Sign out</button>`)}
</header>`
    : null;
  const flash = o.flash ? html`<p class="flash ${o.flash.kind}" role="${o.flash.kind === 'error' ? 'alert' : 'status'}">${o.flash.text}</p>` : null;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title} · mailgate</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
${nav}
<main id="main">
<h1>${o.title}</h1>
${flash}
${o.body}
</main>
${o.copy ? html`<script>${raw(COPY_SCRIPT)}</script>` : null}
</body>
</html>`.value;
}

export function csrfField(session: Session): SafeHtml {
  return html`<input type="hidden" name="_csrf" value="${session.csrf}">`;
}

/** A POST form carrying the session's CSRF token. */
export function postForm(action: string, session: Session, inner: SafeHtml, attrs: SafeHtml | null = null): SafeHtml {
  return html`<form method="post" action="${action}"${attrs}>${csrfField(session)}${inner}</form>`;
}

export interface FieldOptions {
  name: string;
  label: string;
  value?: string;
  error?: string | undefined;
  hint?: string;
  type?: 'text' | 'password' | 'url';
  required?: boolean;
  readonly?: boolean;
  autocomplete?: string;
}

/** A labelled input; its hint and error are tied to it with aria-describedby. */
export function field(o: FieldOptions): SafeHtml {
  const id = `f-${o.name}`;
  const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : null}
${o.error ? html`<p class="field-error" id="${id}-error">${o.error}</p>` : null}
<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}"${o.required ? raw(' required') : null}${
    o.readonly ? raw(' readonly') : null
  }${o.autocomplete ? html` autocomplete="${o.autocomplete}"` : null}${o.error ? raw(' aria-invalid="true"') : null}${
    described ? html` aria-describedby="${described}"` : null
  }>`;
}

/** Lists every problem at the top of a form, each linking to its field. */
export function errorSummary(errors: Record<string, string | undefined>, labels: Record<string, string>): SafeHtml | null {
  const entries = Object.entries(errors).filter((e): e is [string, string] => Boolean(e[1]));
  if (entries.length === 0) return null;
  return html`<div class="errors" role="alert" tabindex="-1" id="errors">
<p><strong>Nothing was saved. Please correct:</strong></p>
<ul>${entries.map(([k, msg]) => html`<li><a href="#f-${k}">${labels[k] ?? k}: ${msg}</a></li>`)}</ul>
</div>`;
}
