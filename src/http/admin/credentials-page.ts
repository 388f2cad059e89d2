import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Provider } from '../../config/types.js';
import { MailgateError } from '../../errors.js';
import { expiryOf, expiryWarning, type CredentialExpiry } from '../../oauth/credential-health.js';
import { redirectUriFor } from '../../oauth/flows.js';
import { resolveCredential } from '../../oauth/providers.js';
import type { StoredCredential } from '../../store/oauth.js';
import { formOf, redirectWith, sendPage, sessionOf, takeFlash, type AdminUiDeps } from './context.js';
import { saveCredential, type CredentialErrors, type CredentialInput } from '../../oauth/credential-input.js';
import { html, raw, type SafeHtml } from './html.js';
import { errorSummary, field, page, postForm } from './layout.js';
import type { Flash, Session } from './session.js';

const PROVIDERS: { id: Provider; label: string }[] = [
  { id: 'google', label: 'Google' },
  { id: 'microsoft', label: 'Microsoft 365' },
  { id: 'microsoft-gcc-high', label: 'Microsoft 365 GCC High' },
  { id: 'custom', label: 'Custom' },
];
const providerLabel = (p: string) => PROVIDERS.find((x) => x.id === p)?.label ?? p;

/** The form's fields, in order; the labels are the ones admins know from other products. */
const LABELS: Record<string, string> = {
  name: 'Name',
  provider: 'Service Provider',
  clientId: 'Client ID',
  clientSecret: 'Client Secret',
  authorizationEndpoint: 'Authorization Endpoint',
  tokenEndpoint: 'Token Endpoint',
  scopes: 'Scopes',
  serviceAccountKeyJson: 'Service-account key (JSON)',
  clientSecretExpiresAt: 'Secret expires on',
};

interface FormValues {
  name: string;
  provider: string;
  clientId: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  scopes: string;
  /** `2027-06-30` or blank. */
  clientSecretExpiresAt?: string;
}

/** A provider's preset endpoints and scopes (empty for custom): what "Fill in" puts in the form. */
function presetFor(provider: string): Pick<FormValues, 'authorizationEndpoint' | 'tokenEndpoint' | 'scopes'> {
  if (!PROVIDERS.some((p) => p.id === provider) || provider === 'custom') return { authorizationEndpoint: '', tokenEndpoint: '', scopes: '' };
  const r = resolveCredential({
    name: 'preset',
    provider: provider as Provider,
    clientId: 'preset',
    clientSecret: undefined,
    authorizationEndpoint: undefined,
    tokenEndpoint: undefined,
    deviceAuthorizationEndpoint: undefined,
    scopes: undefined,
    tenant: 'common',
    grant: 'authorization_code',
  });
  return { authorizationEndpoint: r.authorizationEndpoint ?? '', tokenEndpoint: r.tokenEndpoint, scopes: r.scopes.join(' ') };
}

function valuesFromForm(f: Record<string, string>, name: string): FormValues {
  const t = (k: string) => (f[k] ?? '').trim();
  return { name, provider: t('provider'), clientId: t('clientId'), authorizationEndpoint: t('authorizationEndpoint'), tokenEndpoint: t('tokenEndpoint'), scopes: t('scopes'), clientSecretExpiresAt: t('clientSecretExpiresAt') };
}

interface FormState {
  mode: 'new' | 'edit';
  values: FormValues;
  errors?: CredentialErrors;
  /** Shown above the form (e.g. "defaults filled in"). */
  notice?: Flash | null;
  hasSecret?: boolean;
  /** Editing a service-account credential: its key is stored. */
  hasServiceAccountKey?: boolean;
}

/**
 * Enter in a field presses the form's first submit button (HTML "implicit
 * submission"); this invisible one makes that Save rather than "Fill in
 * provider defaults", which comes first on the page.
 */
const IMPLICIT_SAVE = html`<button type="submit" name="intent" value="save" hidden tabindex="-1"></button>`;

function credentialForm(deps: AdminUiDeps, session: Session, s: FormState): string {
  const v = s.values;
  const e = s.errors ?? {};
  const action = s.mode === 'new' ? '/admin/credentials' : `/admin/credentials/${encodeURIComponent(v.name)}`;
  const callback = redirectUriFor(deps.config().server.publicUrl);
  const secretHint =
    s.mode === 'edit'
      ? `Write-only: the stored secret is never shown. Leave blank to keep it${s.hasSecret ? '' : ' (none is stored)'}.`
      : 'Write-only: stored encrypted and never shown again. Leave blank for a public client.';
  const body = html`${errorSummary(e, LABELS)}
<form method="post" action="${action}" novalidate>
<input type="hidden" name="_csrf" value="${session.csrf}">
${IMPLICIT_SAVE}
${field({ name: 'name', label: 'Name', value: v.name, error: e.name, readonly: s.mode === 'edit', hint: 'Letters, digits, ".", "_" and "-". Accounts refer to the credential by this name.' })}
<label for="f-provider">Service Provider</label>
${e.provider ? html`<p class="field-error" id="f-provider-error">${e.provider}</p>` : null}
<div class="row">
<select id="f-provider" name="provider"${e.provider ? raw(' aria-invalid="true" aria-describedby="f-provider-error"') : null}>
${v.provider === '' ? html`<option value="" selected disabled>Choose the provider…</option>` : null}
${PROVIDERS.map((p) => html`<option value="${p.id}"${p.id === v.provider ? raw(' selected') : null}>${p.label}</option>`)}
</select>
<button type="submit" name="intent" value="prefill">Fill in provider defaults</button>
</div>
${field({ name: 'clientId', label: 'Client ID', value: v.clientId, error: e.clientId, autocomplete: 'off' })}
${field({ name: 'clientSecret', label: 'Client Secret', type: 'password', error: e.clientSecret, autocomplete: 'new-password', hint: secretHint })}
${field({ name: 'clientSecretExpiresAt', label: 'Secret expires on', type: 'text', value: v.clientSecretExpiresAt ?? '', error: e.clientSecretExpiresAt, hint: 'Optional, as 2027-06-30. mailgate warns 30 and 7 days before (log, webhook event, this page).' })}
<label for="f-serviceAccountKeyJson">Service-account key (JSON)</label>
<p class="hint" id="f-serviceAccountKeyJson-hint">Google service accounts (domain-wide delegation) only: paste the JSON key; Client ID and Client Secret are then not needed. Write-only: stored encrypted and never shown.${s.hasServiceAccountKey ? ' Leave blank to keep the stored key.' : ''}</p>
${e.serviceAccountKeyJson ? html`<p class="field-error" id="f-serviceAccountKeyJson-error">${e.serviceAccountKeyJson}</p>` : null}
<textarea id="f-serviceAccountKeyJson" name="serviceAccountKeyJson" rows="4" autocomplete="off" spellcheck="false" aria-describedby="f-serviceAccountKeyJson-hint${e.serviceAccountKeyJson ? ' f-serviceAccountKeyJson-error' : ''}"${e.serviceAccountKeyJson ? raw(' aria-invalid="true"') : null}></textarea>
${field({ name: 'authorizationEndpoint', label: 'Authorization Endpoint', type: 'url', value: v.authorizationEndpoint, error: e.authorizationEndpoint, hint: 'Blank: the provider preset (Custom needs one).' })}
${field({ name: 'tokenEndpoint', label: 'Token Endpoint', type: 'url', value: v.tokenEndpoint, error: e.tokenEndpoint, hint: 'Blank: the provider preset (Custom needs one).' })}
${field({ name: 'scopes', label: 'Scopes', value: v.scopes, error: e.scopes, hint: 'Separated by spaces. Blank: the provider preset (Custom needs them).' })}
${callbackField(callback)}
<div class="actions"><button type="submit" name="intent" value="save" class="primary">Save</button> <a href="/admin/credentials">Cancel</a></div>
</form>`;
  const title = s.mode === 'new' ? 'Add credential' : `Edit credential ${v.name}`;
  return page({ title, section: 'credentials', session, flash: s.notice ?? null, body, copy: true });
}

/** The redirect URL to register with the provider: read-only, with a copy button (the page's only script). */
function callbackField(url: string): SafeHtml {
  return html`<label for="f-callback">Callback URL</label>
<p class="hint" id="f-callback-hint">Register this redirect URL with the provider.</p>
<div class="row">
<input id="f-callback" type="text" value="${url}" readonly aria-describedby="f-callback-hint">
<button type="button" data-copy="f-callback" aria-describedby="f-callback-status" hidden>Copy</button>
</div>
<p class="hint" id="f-callback-status" role="status"></p>`;
}

/** The Credentials page's expiry cell: the date, and the warning once 30 or 7 days are left (or it passed). */
function expiryCell(e: CredentialExpiry | undefined): SafeHtml {
  if (!e) return html`—`;
  const date = new Date(e.expiresAt).toISOString().slice(0, 10);
  const warning = expiryWarning(e);
  const cls = e.threshold === null ? '' : e.threshold === 30 ? 'state-warn' : 'state-bad';
  return html`<span class="${cls}">${date}${e.source === 'certificate' ? ' (certificate)' : ''}</span>${warning ? html`<br><small>${warning}</small>` : null}`;
}

async function expiries(deps: AdminUiDeps, names: string[]): Promise<Map<string, CredentialExpiry>> {
  const out = new Map<string, CredentialExpiry>();
  for (const name of names) {
    const e = await deps.tokens.resolveCredential(name).then((c) => expiryOf(c, Date.now()), () => null);
    if (e) out.set(name, e);
  }
  return out;
}

function listPage(deps: AdminUiDeps, session: Session, stored: StoredCredential[], flash: Flash | null, expiry: Map<string, CredentialExpiry>): string {
  const yaml = deps.config().credentials;
  const inDb = stored.filter((c) => !yaml.some((y) => y.name === c.name));
  const path = (name: string, rest = '') => `/admin/credentials/${encodeURIComponent(name)}${rest}`;
  const rows = [
    ...yaml.map(
      (c) => html`<tr><th scope="row">${c.name}</th><td>${providerLabel(c.provider)}</td><td>${c.clientId}</td><td>${expiryCell(expiry.get(c.name))}</td><td>config file (read-only)</td><td>—</td></tr>`,
    ),
    ...inDb.map(
      (c) => html`<tr><th scope="row">${c.name}</th><td>${providerLabel(c.provider)}</td><td>${c.clientId}</td><td>${expiryCell(expiry.get(c.name))}</td><td>database</td>
<td><a href="${path(c.name, '/edit')}" aria-label="Edit ${c.name}">Edit</a> · <a href="${path(c.name, '/remove')}" aria-label="Remove ${c.name}">Remove</a></td></tr>`,
    ),
  ];
  const body = html`<p><a class="button" href="/admin/credentials/new">Add credential</a></p>
${
  rows.length
    ? html`<table>
<caption>OAuth2 client credentials</caption>
<thead><tr><th scope="col">Name</th><th scope="col">Service Provider</th><th scope="col">Client ID</th><th scope="col">Secret expires</th><th scope="col">Defined in</th><th scope="col">Actions</th></tr></thead>
<tbody>${rows}</tbody>
</table>`
    : html`<p>No credentials yet.</p>`
}
<p>Credentials in the config file are changed there. Secrets are never shown.</p>
${callbackField(redirectUriFor(deps.config().server.publicUrl))}`;
  return page({ title: 'Credentials', section: 'credentials', session, flash, body, copy: true });
}

export function registerCredentialPages(admin: FastifyInstance, deps: AdminUiDeps): void {
  /** A database credential, or a redirect to the list saying why not. */
  const editable = async (req: FastifyRequest, reply: FastifyReply, name: string): Promise<StoredCredential | null> => {
    const problem = deps.config().credentials.some((c) => c.name === name)
      ? `Credential ${name} is defined in the config file; change it there.`
      : null;
    const stored = problem ? null : await deps.store.credentials.get(name);
    if (!stored) void redirectWith(req, reply, '/admin/credentials', { kind: 'error', text: problem ?? `There is no credential ${name}.` });
    return stored;
  };

  /** Prefill or save; on bad input the same form comes back with every problem, and nothing is stored. */
  const submit = async (req: FastifyRequest, reply: FastifyReply, mode: 'new' | 'edit', existing: StoredCredential | null) => {
    const session = sessionOf(req);
    const form = formOf(req);
    const values = valuesFromForm(form, existing?.name ?? (form.name ?? '').trim());
    const wasServiceAccount = existing?.settings.grant === 'service_account';
    const state = { mode, hasSecret: Boolean(existing?.clientSecret) && !wasServiceAccount, hasServiceAccountKey: wasServiceAccount };
    const pastedKey = (form.serviceAccountKeyJson ?? '').trim();
    if (form.intent === 'prefill') {
      const notice = { kind: 'ok' as const, text: `Filled in the ${providerLabel(values.provider)} defaults. Nothing is saved yet.` };
      return sendPage(reply, credentialForm(deps, session, { ...state, values: { ...values, ...presetFor(values.provider) }, notice }));
    }
    const keep = existing?.settings ?? {};
    const input: CredentialInput = {
      name: values.name,
      provider: values.provider,
      clientId: values.clientId,
      // Write-only: a blank field keeps the stored secret when editing.
      clientSecret: form.clientSecret ? form.clientSecret : mode === 'edit' ? undefined : null,
      authorizationEndpoint: values.authorizationEndpoint || undefined,
      tokenEndpoint: values.tokenEndpoint || undefined,
      scopes: values.scopes ? values.scopes.split(/\s+/) : undefined,
      // Settings the form does not show are kept as they were.
      deviceAuthorizationEndpoint: keep.deviceAuthorizationEndpoint as string | undefined,
      grant: pastedKey ? 'service_account' : (keep.grant as string | undefined),
      // A pasted key replaces the stored one; blank keeps it (saveCredential).
      ...(pastedKey ? { serviceAccountKeyJson: pastedKey } : {}),
      ...(values.clientSecretExpiresAt ? { clientSecretExpiresAt: values.clientSecretExpiresAt } : {}),
      testingApp: keep.testingApp === true ? true : undefined,
      tenant: values.provider.startsWith('microsoft') ? (keep.tenant as string | undefined) : undefined,
    };
    try {
      await saveCredential(deps.store, deps.config(), input, { createOnly: mode === 'new' });
    } catch (err) {
      const fields = err instanceof MailgateError ? (err.details?.fields as CredentialErrors | undefined) : undefined;
      if (!fields) throw err;
      const notice = form.clientSecret || pastedKey ? { kind: 'error' as const, text: 'The secret (client secret or key) was not kept; enter it again.' } : null;
      return sendPage(reply, credentialForm(deps, session, { ...state, values, errors: fields, notice }), 400);
    }
    return redirectWith(req, reply, '/admin/credentials', { kind: 'ok', text: `Credential ${values.name} saved.` });
  };

  admin.get('/credentials', async (req, reply) => {
    const stored = await deps.store.credentials.list();
    const names = [...new Set([...deps.config().credentials.map((c) => c.name), ...stored.map((c) => c.name)])];
    return sendPage(reply, listPage(deps, sessionOf(req), stored, takeFlash(req), await expiries(deps, names)));
  });

  admin.get('/credentials/new', async (req, reply) => {
    // No default provider: the admin chooses one (a silent "Custom" asked for endpoints nobody meant to type).
    const values = { name: '', provider: '', clientId: '', ...presetFor('custom') };
    return sendPage(reply, credentialForm(deps, sessionOf(req), { mode: 'new', values }));
  });

  admin.post('/credentials', async (req, reply) => submit(req, reply, 'new', null));

  admin.get('/credentials/:name/edit', async (req, reply) => {
    const c = await editable(req, reply, (req.params as { name: string }).name);
    if (!c) return reply;
    const resolved = await deps.tokens.resolveCredential(c.name);
    const values = {
      name: c.name,
      provider: c.provider,
      clientId: c.clientId,
      authorizationEndpoint: resolved.authorizationEndpoint ?? '',
      tokenEndpoint: resolved.tokenEndpoint,
      scopes: resolved.scopes.join(' '),
      clientSecretExpiresAt: typeof c.settings.clientSecretExpiresAt === 'number' ? new Date(c.settings.clientSecretExpiresAt).toISOString().slice(0, 10) : '',
    };
    const sa = c.settings.grant === 'service_account';
    return sendPage(reply, credentialForm(deps, sessionOf(req), { mode: 'edit', values, hasSecret: Boolean(c.clientSecret) && !sa, hasServiceAccountKey: sa }));
  });

  admin.post('/credentials/:name', async (req, reply) => {
    const c = await editable(req, reply, (req.params as { name: string }).name);
    return c ? submit(req, reply, 'edit', c) : reply;
  });

  admin.get('/credentials/:name/remove', async (req, reply) => {
    const c = await editable(req, reply, (req.params as { name: string }).name);
    if (!c) return reply;
    const session = sessionOf(req);
    const users = deps.config().accounts.filter((a) => deps.tokens.credentialNameOf(a) === c.name).map((a) => a.name);
    const body = html`<p>Remove the credential <strong>${c.name}</strong> (${providerLabel(c.provider)}, client ID ${c.clientId})? Its encrypted secret is deleted.</p>
${users.length ? html`<p class="errors">Accounts using it will stop working: ${users.join(', ')}.</p>` : null}
${postForm(
  `/admin/credentials/${encodeURIComponent(c.name)}/remove`,
  session,
  html`<div class="actions"><button type="submit" class="danger">Remove ${c.name}</button> <a href="/admin/credentials">Cancel</a></div>`,
)}`;
    return sendPage(reply, page({ title: `Remove credential ${c.name}?`, section: 'credentials', session, body }));
  });

  admin.post('/credentials/:name/remove', async (req, reply) => {
    const c = await editable(req, reply, (req.params as { name: string }).name);
    if (!c) return reply;
    await deps.store.credentials.remove(c.name);
    return redirectWith(req, reply, '/admin/credentials', { kind: 'ok', text: `Credential ${c.name} removed.` });
  });
}
