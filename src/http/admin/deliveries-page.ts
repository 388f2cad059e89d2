import type { FastifyInstance } from 'fastify';
import { redirectWith, sendPage, sessionOf, takeFlash, type AdminUiDeps } from './context.js';
import { html } from './html.js';
import { page, postForm } from './layout.js';
import { when } from './plain-words.js';

/** The page shows this many failed deliveries, newest first as the store lists them. */
const PAGE_SIZE = 200;
/** Characters of the webhook's answer shown per row (the store keeps a longer excerpt). */
const EXCERPT_CHARS = 300;

export function registerDeliveryPages(admin: FastifyInstance, deps: AdminUiDeps): void {
  admin.get('/deliveries', async (req, reply) => {
    const session = sessionOf(req);
    const now = Date.now();
    const failed = await deps.store.deliveries.list({ status: 'failed', limit: PAGE_SIZE });
    const rows = failed.map((d) => {
      const excerpt = d.responseExcerpt ?? '';
      return html`<tr>
<th scope="row"><code>${d.id}</code></th>
<td>${d.account}</td>
<td>${d.webhook}</td>
<td>${d.event}</td>
<td>${d.attempts}</td>
<td>${d.lastStatus ?? 'no answer'}</td>
<td>${d.lastError ?? '—'}${excerpt ? html`<pre>${excerpt.length > EXCERPT_CHARS ? `${excerpt.slice(0, EXCERPT_CHARS)}…` : excerpt}</pre>` : null}</td>
<td>${when(new Date(d.updatedAt).toISOString(), now)}</td>
<td>${postForm(`/admin/deliveries/${encodeURIComponent(d.id)}/retry`, session, html`<button type="submit" aria-label="Retry ${d.id}">Retry</button>`)}</td>
</tr>`;
    });
    const body = failed.length
      ? html`<p>These webhook deliveries ran out of attempts and are parked. Fix the receiver, then retry: each goes back in the queue with a fresh attempt budget.</p>
${postForm('/admin/deliveries/retry-failed', session, html`<button type="submit" class="primary">Retry all failed</button>`)}
<table>
<caption>Failed deliveries</caption>
<thead><tr><th scope="col">Delivery</th><th scope="col">Account</th><th scope="col">Webhook</th><th scope="col">Event</th><th scope="col">Attempts</th><th scope="col">Response code</th><th scope="col">Error and response</th><th scope="col">Failed</th><th scope="col">Action</th></tr></thead>
<tbody>${rows}</tbody>
</table>`
      : html`<p>No failed deliveries.</p>`;
    return sendPage(reply, page({ title: 'Failed deliveries', section: 'deliveries', session, flash: takeFlash(req), body }));
  });

  // The same store calls as POST /v1/deliveries/{id}/retry and /v1/deliveries/retry-failed.
  admin.post('/deliveries/:id/retry', async (req, reply) => {
    const { id } = req.params as { id: string };
    const queued = await deps.store.deliveries.retry(id, Date.now());
    if (queued) deps.wake();
    const flash = queued
      ? { kind: 'ok' as const, text: `Delivery ${id} is queued again.` }
      : { kind: 'error' as const, text: `Delivery ${id} does not exist or was already delivered.` };
    return redirectWith(req, reply, '/admin/deliveries', flash);
  });

  admin.post('/deliveries/retry-failed', async (req, reply) => {
    const n = await deps.store.deliveries.retryAllFailed(Date.now());
    deps.wake();
    return redirectWith(req, reply, '/admin/deliveries', { kind: 'ok', text: `${n} failed ${n === 1 ? 'delivery is' : 'deliveries are'} queued again.` });
  });
}
