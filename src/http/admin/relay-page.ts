import type { FastifyInstance } from 'fastify';
import { sendPage, sessionOf, takeFlash, type AdminUiDeps } from './context.js';
import { html } from './html.js';
import { page } from './layout.js';
import { when } from './plain-words.js';

const REFUSALS: Record<string, string> = {
  '550': 'sender not allowed',
  '552': 'too big',
  '421': 'busy',
  '451': 'not stored',
};

/** The SMTP relay: per client, last use, messages relayed and failures (the same numbers as `mailgate status`). */
export function registerRelayPage(admin: FastifyInstance, deps: AdminUiDeps): void {
  admin.get('/relay', async (req, reply) => {
    const session = sessionOf(req);
    const now = Date.now();
    const view = deps.relay?.() ?? null;
    let body;
    if (!view) {
      body = html`<p>The SMTP relay is off. Add a <code>relay</code> section to the config (listener, clients) and reload to let scanners, printers and other applications that log in with a password send through an account.</p>`;
    } else {
      const rows = view.clients.map((c) => {
        const refused = Object.entries(c.refused)
          .filter(([, n]) => n > 0)
          .map(([code, n]) => `${n} × ${code} (${REFUSALS[code] ?? 'refused'})`);
        const details = [...(c.loginFailures > 0 ? [`${c.loginFailures} wrong password${c.loginFailures === 1 ? '' : 's'}`] : []), ...refused].join(', ');
        return html`<tr>
<th scope="row">${c.name}</th>
<td><code>${c.username}</code></td>
<td>${c.account}</td>
<td>${c.allowedFrom.join(', ')}</td>
<td>${when(c.lastUsedAt, now)}</td>
<td>${c.relayed}</td>
<td>${c.failures}${details ? html` <small>(${details})</small>` : null}</td>
<td>${when(c.lastFailureAt, now)}</td>
</tr>`;
      });
      body = html`<p>Listening on <code>${view.listen}</code>, ${view.tls ? 'with STARTTLS' : 'without TLS (loopback only)'}, messages up to ${Math.round(view.maxMessageSizeBytes / 1024 / 1024)} MB. Relayed messages are in the outbox like any other (<code>GET /v1/outbox/{id}</code>; the id is in the relay's 250 reply).</p>
<table>
<caption>Relay clients</caption>
<thead><tr><th scope="col">Client</th><th scope="col">Username</th><th scope="col">Account</th><th scope="col">Allowed senders</th><th scope="col">Last use</th><th scope="col">Relayed</th><th scope="col">Failures</th><th scope="col">Last failure</th></tr></thead>
<tbody>${rows}</tbody>
</table>
<p>Logins with a username no client has: ${view.unknownLoginFailures}.</p>`;
    }
    return sendPage(reply, page({ title: 'SMTP relay', section: 'relay', session, flash: takeFlash(req), body }));
  });
}
