import { describe, expect, it } from 'vitest';
import { formatGuide, googleDelegationGuide, microsoftAppOnlyGuide, oauthRedirectUrl } from '../../../src/oauth/setup-guides.js';

const CLIENT = '00001111-aaaa-2222-bbbb-3333cccc4444';
const OBJECT = '11112222-bbbb-3333-cccc-4444dddd5555';

describe('microsoftAppOnlyGuide', () => {
  it('prints the Exchange Online PowerShell for the app and the mailbox', () => {
    const g = microsoftAppOnlyGuide({ credential: 'm365-app', clientId: CLIENT, tenant: 'contoso.onmicrosoft.com', mailbox: 'support@contoso.com', enterpriseObjectId: OBJECT, protocols: { imap: true, pop3: true, smtp: true } });
    const lines = g.script!.split('\n');
    expect(lines).toContain('Connect-ExchangeOnline -Organization \'contoso.onmicrosoft.com\'');
    expect(lines).toContain(`New-ServicePrincipal -AppId '${CLIENT}' -ObjectId '${OBJECT}' -DisplayName 'mailgate m365-app'`);
    expect(lines).toContain("$sp = Get-ServicePrincipal -Identity 'mailgate m365-app'");
    expect(lines).toContain("Add-MailboxPermission -Identity 'support@contoso.com' -User $sp.Identity -AccessRights FullAccess");
    expect(lines).toContain("Set-CASMailbox -Identity 'support@contoso.com' -ImapEnabled $true -PopEnabled $true -SmtpClientAuthenticationDisabled $false");
    expect(g.script).not.toMatch(/ManagementRoleAssignment/);
    expect(g.values['API permissions']).toBe('IMAP.AccessAsApp, POP.AccessAsApp, SMTP.SendAsApp');
    expect(g.values.Scope).toBe('https://outlook.office365.com/.default');
    expect(g.steps.join('\n')).toMatch(/Enterprise applications.*Object ID.*not the Object ID on the App registrations page/s);
    expect(g.sources).toEqual(['https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth']);
  });

  it('can allow SMTP through an RBAC scope of just this mailbox instead', () => {
    const g = microsoftAppOnlyGuide({ credential: 'c', clientId: CLIENT, tenant: 't', mailbox: 'o\'brien@contoso.com', protocols: { imap: false, smtp: true }, smtpVia: 'rbac' });
    const lines = g.script!.split('\n');
    expect(lines).toContain("New-ManagementScope -Name 'mailgate o''brien@contoso.com' -RecipientRestrictionFilter 'PrimarySmtpAddress -eq ''o''''brien@contoso.com'''");
    expect(lines).toContain(`New-ManagementRoleAssignment -Name 'mailgate o''brien@contoso.com SMTP' -Role 'Application SMTP.SendAsApp' -App '${CLIENT}' -CustomResourceScope 'mailgate o''brien@contoso.com'`);
    expect(lines).toContain(`Test-ServicePrincipalAuthorization -Identity '${CLIENT}' -Resource 'o''brien@contoso.com'`);
    // Neither a mailbox permission nor the SMTP.SendAsApp permission: Microsoft says the claim would trigger the mailbox-permission check.
    expect(g.script).not.toMatch(/Add-MailboxPermission/);
    expect(g.values['API permissions']).toBe('');
    expect(g.sources).toHaveLength(2);
  });

  it('prints a placeholder for an unknown Object ID and the GCC High environment', () => {
    const g = microsoftAppOnlyGuide({ credential: 'gov', clientId: CLIENT, tenant: 'agency.onmicrosoft.us', mailbox: 'desk@agency.gov', cloud: 'microsoft-gcc-high' });
    expect(g.script).toMatch(/^Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh -Organization 'agency.onmicrosoft.us'$/m);
    expect(g.script).toMatch(/-ObjectId '<Object ID from Entra › Enterprise applications › \(your app\) › Overview>'/);
    expect(g.values.Scope).toBe('https://outlook.office365.us/.default');
    expect(g.steps[0]).toMatch(/^In the Azure portal for US Government \(https:\/\/portal\.azure\.us\)/);
  });

  it('refuses values that would not paste into a script safely', () => {
    expect(() => microsoftAppOnlyGuide({ credential: 'c', clientId: 'not-a-guid', tenant: 't', mailbox: 'a@b' })).toThrow(/GUID/);
    expect(() => microsoftAppOnlyGuide({ credential: 'c', clientId: CLIENT, tenant: 't\n; Remove-Mailbox x', mailbox: 'a@b' })).toThrow(/control character/);
    expect(() => microsoftAppOnlyGuide({ credential: 'c', clientId: CLIENT, tenant: 't', mailbox: 'nobody' })).toThrow(/address/);
    expect(microsoftAppOnlyGuide({ credential: "x'; Remove-Mailbox -Identity y; '", clientId: CLIENT, tenant: 't', mailbox: 'a@b' }).script).toContain("-DisplayName 'mailgate x''; Remove-Mailbox -Identity y; '''");
  });
});

describe('googleDelegationGuide', () => {
  it('gives the client id and the scopes to paste', () => {
    const g = googleDelegationGuide({ credential: 'google-sa', clientId: '113456789012345678901', clientEmail: 'mailgate@proj.iam.gserviceaccount.com', scopes: ['https://mail.google.com/'], testMailbox: 'support@example.com' });
    expect(g.values).toEqual({ 'Client ID': '113456789012345678901', 'OAuth scopes': 'https://mail.google.com/', 'Service account': 'mailgate@proj.iam.gserviceaccount.com' });
    const text = formatGuide(g);
    expect(text).toContain('2. Go to Security › Access and data control › API controls, and select "Manage Domain Wide Delegation".');
    expect(text).toContain('4. Client ID: 113456789012345678901');
    expect(text).toContain('5. OAuth scopes (comma-delimited): https://mail.google.com/');
    expect(text).toMatch(/up to 24 hours/);
    expect(text).toMatch(/Source: https:\/\/developers\.google\.com\/identity\/protocols\/oauth2\/service-account#delegatingauthority/);
    expect(googleDelegationGuide({ credential: 'x', clientId: '1', clientEmail: 'e', scopes: ['a', 'b'] }).values['OAuth scopes']).toBe('a,b');
    expect(() => googleDelegationGuide({ credential: 'x', clientId: 'sa@x.iam.gserviceaccount.com', clientEmail: 'e', scopes: ['a'] })).toThrow(/numeric/);
  });
});

describe('formatGuide and the redirect URL', () => {
  it('numbers the steps and ends with the script and sources', () => {
    const text = formatGuide(microsoftAppOnlyGuide({ credential: 'c', clientId: CLIENT, tenant: 't', mailbox: 'a@b.c', enterpriseObjectId: OBJECT }));
    expect(text.split('\n')[0]).toBe('Microsoft 365 app-only access for a@b.c');
    expect(text).toMatch(/\n1\. In the Microsoft Entra admin center/);
    expect(text).toMatch(/Add-MailboxPermission/);
    expect(text.trimEnd().split('\n').at(-1)).toMatch(/^Source: https:\/\/learn\.microsoft\.com\//);
  });

  it('is the contract\'s callback under publicUrl', () => {
    expect(oauthRedirectUrl('https://mail.example.com/')).toBe('https://mail.example.com/oauth2/callback');
    expect(oauthRedirectUrl('http://127.0.0.1:8025')).toBe('http://127.0.0.1:8025/oauth2/callback');
  });
});
