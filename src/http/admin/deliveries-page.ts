import type { FastifyInstance } from 'fastify';
import { redirectWith, sendPage, sessionOf, takeFlash, type AdminUiDeps } from './context.js';
import { html, type SafeHtml } from './html.js';
import type { DeliveryRecord } from '../../store/deliveries.js';
import { page, postForm } from './layout.js';
import { when } from './plain-words.js';
import { accountNamed } from '../../config/lookup.js';

/** replyText shown on the delivery view at most (characters). */
const REPLY_TEXT_CHARS = 4_000;

type Payload = Record<string, unknown>;

/** The body the pipeline gets: stored for events and message.failed, rebuilt (parse thread) for message.received. */
async function payloadOf(deps: AdminUiDeps, d: DeliveryRecord): Promise<{ payload: Payload | null; problem: string | null }> {
  try {
    if (d.payloadJson !== null) return { payload: JSON.parse(d.payloadJson) as Payload, problem: null };
    if (d.messageRef === null || !deps.render) return { payload: null, problem: null };
    const stored = await deps.store.messages.getWithRaw(d.messageRef);
    if (!stored) return { payload: null, problem: 'the raw message is no longer kept (retention)' };
    const wh = deps.config().webhooks.find((w) => w.name === d.webhook);
    const account = accountNamed(deps.config(), d.account);
    const body = await deps.render(
      stored.raw,
      { id: stored.info.id, account: stored.info.account, origin: stored.info.origin, conversationId: stored.info.conversationId },
      {
        maxInlineAttachmentBytes: 0,
        maxBodyBytes: wh?.maxBodyBytes ?? 25 * 1024 * 1024,
        issueKeyPattern: wh ? wh.issueKeyPattern : undefined,
        ownAddresses: account ? [account.email] : [],
      },
    );
    return { payload: JSON.parse(body.toString('utf8')) as Payload, problem: null };
  } catch (err) {
    return { payload: null, problem: `could not be rebuilt: ${(err as Error).message}` };
  }
}

const text = (v: unknown): string => (typeof v === 'string' ? v : v === null || v === undefined ? '—' : JSON.stringify(v));

/** What a pipeline decides on (product.md, "What the issue pipeline receives"), then the message's own fields. */
function fieldsOf(p: Payload): SafeHtml {
  const reply = typeof p.replyText === 'string' ? p.replyText : null;
  const bounce = p.bounce as Record<string, unknown> | null | undefined;
  const from = p.from as { name?: string; address?: string } | null | undefined;
  return html`<dt>Subject</dt><dd>${text(p.subject)}</dd>
<dt>From</dt><dd>${from ? `${from.name ? `${from.name} ` : ''}<${from.address ?? ''}>` : '—'}</dd>
<dt>Conversation</dt><dd><code>${text(p.conversationId)}</code></dd>
<dt>Issue keys</dt><dd>${Array.isArray(p.issueKeys) && p.issueKeys.length > 0 ? p.issueKeys.map((k) => html`<code>${String(k)}</code> `) : 'none'}</dd>
<dt>Automatic</dt><dd>${p.autoType ? text(p.autoType) : 'no (a person wrote it)'}</dd>
${bounce ? html`<dt>Bounce</dt><dd>original ${text(bounce.originalMessageId)}, recipient ${text(bounce.recipient)}, status ${text(bounce.status)}, action ${text(bounce.action)}</dd>` : null}
<dt>Reply text</dt><dd>${reply !== null ? html`<pre class="reply-text">${reply.length > REPLY_TEXT_CHARS ? `${reply.slice(0, REPLY_TEXT_CHARS)}…` : reply}</pre>` : '—'}</dd>
${p.reason ? html`<dt>Reason</dt><dd>${text(p.reason)}: ${text(p.error)}</dd>` : null}`;
}

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
<th scope="row"><a href="/admin/deliveries/${encodeURIComponent(d.id)}"><code>${d.id}</code></a></th>
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

  // One delivery: what the pipeline gets (issue 16's fields first), rebuilt from the stored message as the worker builds it.
  admin.get('/deliveries/:id', async (req, reply) => {
    const session = sessionOf(req);
    const { id } = req.params as { id: string };
    const d = await deps.store.deliveries.get(id);
    if (!d) return redirectWith(req, reply, '/admin/deliveries', { kind: 'error', text: `Delivery ${id} does not exist.` });
    const { payload, problem } = await payloadOf(deps, d);
    const body = html`<p><a href="/admin/deliveries">← Failed deliveries</a></p>
<dl class="delivery">
<dt>Delivery</dt><dd><code>${d.id}</code>, ${d.event} to webhook ${d.webhook}, ${d.status}, ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}</dd>
${payload ? fieldsOf(payload) : html`<dt>Payload</dt><dd>${problem ?? 'not available'}</dd>`}
</dl>`;
    return sendPage(reply, page({ title: `Delivery ${d.id}`, section: 'deliveries', session, flash: takeFlash(req), body }));
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
