/**
 * The provider-side setup an admin must do once, printed with the exact
 * values to paste (`mailgate setup microsoft-app-only`, `mailgate setup
 * google-service-account`, the admin UI). Pure: text in, text out.
 *
 * Microsoft, app-only IMAP/POP/SMTP, from
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 * ("Use client credentials grant flow to authenticate SMTP, IMAP, and POP
 * connections"): application permissions IMAP.AccessAsApp / POP.AccessAsApp /
 * SMTP.SendAsApp on "Office 365 Exchange Online" with admin consent, then in
 * Exchange Online PowerShell `New-ServicePrincipal -AppId -ObjectId` where
 * ObjectId is the Enterprise application's Object ID ("not the Object ID
 * from the Overview page of the App Registrations node"), and
 * `Add-MailboxPermission -AccessRights FullAccess` per mailbox.
 * For SMTP only, RBAC for Applications can replace the mailbox permission:
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/smtp-app-rbac-onboarding
 * (`New-ManagementScope`, `New-ManagementRoleAssignment -Role 'Application
 * SMTP.SendAsApp' -App … -CustomResourceScope …`, and then no SMTP.SendAsApp
 * permission on the app). The `Application Mail.*` roles of RBAC for
 * Applications govern Microsoft Graph and EWS, not IMAP or POP, so they are
 * not what this prints.
 *
 * Google, domain-wide delegation, from
 * https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority
 * and https://support.google.com/a/answer/162106 : Admin console › Security ›
 * Access and data control › API controls › Manage Domain Wide Delegation ›
 * Add new, the numeric client ID and the comma-delimited scopes; "can take up
 * to 24 hours".
 */

export const MICROSOFT_APP_ONLY_SOURCE = 'https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth';
export const MICROSOFT_SMTP_RBAC_SOURCE = 'https://learn.microsoft.com/exchange/client-developer/legacy-protocols/smtp-app-rbac-onboarding';
export const GOOGLE_DELEGATION_SOURCE = 'https://developers.google.com/identity/protocols/oauth2/service-account#delegatingauthority';
export const GOOGLE_DELEGATION_HELP = 'https://support.google.com/a/answer/162106';

/** The redirect URL to register with either provider: the contract's {publicUrl}/oauth2/callback. */
export function oauthRedirectUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/oauth2/callback`;
}

export interface MicrosoftAppOnlyInput {
  /** mailgate's credential name, for the comments and the display name. */
  credential: string;
  /** Application (client) ID. */
  clientId: string;
  /** Tenant ID or primary domain (the Connect-ExchangeOnline organization). */
  tenant: string;
  /** The mailbox login: the account's `user`, default its email (shared mailboxes included). */
  mailbox: string;
  /** Object ID of the Enterprise application (service principal); a placeholder is printed when unknown. */
  enterpriseObjectId?: string;
  cloud?: 'microsoft' | 'microsoft-gcc-high';
  protocols?: { imap?: boolean; pop3?: boolean; smtp?: boolean };
  /** How SMTP is allowed: the same FullAccess permission (default) or an RBAC scope for just this mailbox. */
  smtpVia?: 'mailbox-permission' | 'rbac';
}

export interface SetupGuide {
  title: string;
  /** What to click, in order. */
  steps: string[];
  /** For Microsoft: the Exchange Online PowerShell to run. */
  script: string | null;
  /** The values the admin pastes somewhere, by label. */
  values: Record<string, string>;
  sources: string[];
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OBJECT_ID_PLACEHOLDER = '<Object ID from Entra › Enterprise applications › (your app) › Overview>';

/** A value for a single-quoted PowerShell string: quotes doubled, control characters refused. */
function ps(value: string, what: string): string {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new TypeError(`${what} contains a control character`);
  // PowerShell takes the curly quotes as quotes too; each is escaped by doubling it.
  return `'${value.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

function requireGuid(value: string, what: string): string {
  if (!GUID.test(value)) throw new TypeError(`${what} must be a GUID like 00001111-aaaa-2222-bbbb-3333cccc4444, got "${value}"`);
  return value;
}

export function microsoftAppOnlyGuide(input: MicrosoftAppOnlyInput): SetupGuide {
  const clientId = requireGuid(input.clientId, 'clientId');
  const objectId = input.enterpriseObjectId ? requireGuid(input.enterpriseObjectId, 'the Enterprise application Object ID') : null;
  if (!input.mailbox.includes('@')) throw new TypeError(`the mailbox login must be an address, got "${input.mailbox}"`);
  const gcc = input.cloud === 'microsoft-gcc-high';
  const imap = input.protocols?.imap ?? true;
  const pop3 = input.protocols?.pop3 ?? false;
  const smtp = input.protocols?.smtp ?? true;
  const rbac = smtp && input.smtpVia === 'rbac';
  const needsMailboxPermission = imap || pop3 || (smtp && !rbac);
  const displayName = `mailgate ${input.credential}`;
  // GCC High apps are registered in the US Government portal (Microsoft Entra national clouds:
  // https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud).
  const portal = gcc ? 'the Azure portal for US Government (https://portal.azure.us) › Microsoft Entra ID' : 'the Microsoft Entra admin center (https://entra.microsoft.com)';
  const permissions = [imap && 'IMAP.AccessAsApp', pop3 && 'POP.AccessAsApp', smtp && !rbac && 'SMTP.SendAsApp'].filter((p): p is string => Boolean(p));
  const scopeName = `mailgate ${input.mailbox}`;

  const steps = [
    `In ${portal} › App registrations › the app with client ID ${clientId} › API permissions › Add a permission › APIs my organization uses › "Office 365 Exchange Online" › Application permissions: ${permissions.join(', ') || '(none: SMTP goes through RBAC below)'}.`,
    'Select "Grant admin consent" on the same page.',
    `In Entra › Enterprise applications, open the same app (client ID ${clientId}) and copy its Object ID from the Overview page. It is not the Object ID on the App registrations page; using that one makes every login fail.`,
    'Run the PowerShell below in Exchange Online PowerShell, as an Exchange administrator.',
    'Then mailgate runs a test login. Exchange can take several minutes (up to an hour) to apply new permissions; a login refused right after the script is not yet a wrong setup.',
  ];

  const L: string[] = [];
  L.push(`# mailgate: app-only access for ${input.mailbox} with credential ${input.credential}`);
  L.push(`# Microsoft's instructions: ${MICROSOFT_APP_ONLY_SOURCE}`);
  if (rbac) L.push(`# SMTP through RBAC for Applications: ${MICROSOFT_SMTP_RBAC_SOURCE}`);
  L.push('');
  L.push('# Once per machine:');
  L.push('Install-Module -Name ExchangeOnlineManagement');
  L.push('Import-Module ExchangeOnlineManagement');
  L.push(gcc ? `Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh -Organization ${ps(input.tenant, 'tenant')}` : `Connect-ExchangeOnline -Organization ${ps(input.tenant, 'tenant')}`);
  L.push('');
  L.push("# Once per app: register its service principal in Exchange (skip if Get-ServicePrincipal already lists it).");
  L.push(`New-ServicePrincipal -AppId ${ps(clientId, 'clientId')} -ObjectId ${objectId ? ps(objectId, 'objectId') : `'${OBJECT_ID_PLACEHOLDER}'`} -DisplayName ${ps(displayName, 'display name')}`);
  L.push(`$sp = Get-ServicePrincipal -Identity ${ps(displayName, 'display name')}`);
  L.push('');
  if (needsMailboxPermission) {
    L.push('# Per mailbox: let the app open it (IMAP and POP need this; so does SMTP unless it goes through RBAC).');
    L.push(`Add-MailboxPermission -Identity ${ps(input.mailbox, 'mailbox')} -User $sp.Identity -AccessRights FullAccess`);
  }
  if (rbac) {
    L.push("# SMTP for this mailbox only, through RBAC for Applications (then the app must NOT have the SMTP.SendAsApp permission).");
    L.push(`New-ManagementScope -Name ${ps(scopeName, 'scope name')} -RecipientRestrictionFilter ${ps(`PrimarySmtpAddress -eq '${input.mailbox.replace(/'/g, "''")}'`, 'filter')}`);
    L.push(`New-ManagementRoleAssignment -Name ${ps(`${scopeName} SMTP`, 'assignment name')} -Role 'Application SMTP.SendAsApp' -App ${ps(clientId, 'clientId')} -CustomResourceScope ${ps(scopeName, 'scope name')}`);
    L.push(`Test-ServicePrincipalAuthorization -Identity ${ps(clientId, 'clientId')} -Resource ${ps(input.mailbox, 'mailbox')}`);
  }
  const cas = [imap && '-ImapEnabled $true', pop3 && '-PopEnabled $true', smtp && '-SmtpClientAuthenticationDisabled $false'].filter(Boolean);
  if (cas.length > 0) {
    L.push('');
    L.push('# If the protocols are turned off for this mailbox (SMTP AUTH often is):');
    L.push(`Set-CASMailbox -Identity ${ps(input.mailbox, 'mailbox')} ${cas.join(' ')}`);
  }
  L.push('');

  return {
    title: `Microsoft 365 app-only access for ${input.mailbox}`,
    steps,
    script: L.join('\n'),
    values: {
      'Application (client) ID': clientId,
      'Enterprise application Object ID': objectId ?? '(copy it from Enterprise applications)',
      Mailbox: input.mailbox,
      Scope: gcc ? 'https://outlook.office365.us/.default' : 'https://outlook.office365.com/.default',
      'API permissions': permissions.join(', '),
    },
    sources: rbac ? [MICROSOFT_APP_ONLY_SOURCE, MICROSOFT_SMTP_RBAC_SOURCE] : [MICROSOFT_APP_ONLY_SOURCE],
  };
}

export interface GoogleDelegationInput {
  credential: string;
  /** The key's numeric client_id (not its email: Google refuses a delegation entered by email). */
  clientId: string;
  clientEmail: string;
  scopes: readonly string[];
  /** A mailbox the test login will use, for the closing step. */
  testMailbox?: string;
}

export function googleDelegationGuide(input: GoogleDelegationInput): SetupGuide {
  if (!/^\d+$/.test(input.clientId)) throw new TypeError(`clientId must be the numeric client_id of the service-account key, got "${input.clientId}"`);
  if (input.scopes.length === 0) throw new TypeError('at least one scope is needed');
  const scopes = input.scopes.join(',');
  return {
    title: `Google domain-wide delegation for ${input.clientEmail}`,
    steps: [
      'Sign in to the Google Admin console (https://admin.google.com) as a super administrator.',
      'Go to Security › Access and data control › API controls, and select "Manage Domain Wide Delegation".',
      'Select "Add new".',
      `Client ID: ${input.clientId}  (the numeric client ID of ${input.clientEmail}; the email address is refused)`,
      `OAuth scopes (comma-delimited): ${scopes}`,
      'Select "Authorize".',
      'Make sure IMAP is allowed for the users (Apps › Google Workspace › Gmail › End User Access › POP and IMAP access).',
      `Google says delegation "can take up to 24 hours" to apply; until then mailgate shows "domain-wide delegation … is missing the scope …" and retries every 15 minutes${input.testMailbox ? `, then logs in to ${input.testMailbox}` : ''}.`,
    ],
    script: null,
    values: { 'Client ID': input.clientId, 'OAuth scopes': scopes, 'Service account': input.clientEmail },
    sources: [GOOGLE_DELEGATION_SOURCE, GOOGLE_DELEGATION_HELP],
  };
}

/** The guide as the CLI prints it. */
export function formatGuide(guide: SetupGuide): string {
  const out = [guide.title, '', ...guide.steps.map((s, i) => `${i + 1}. ${s}`)];
  if (guide.script) out.push('', guide.script.trimEnd());
  out.push('', ...guide.sources.map((s) => `Source: ${s}`), '');
  return out.join('\n');
}
