import type { FastifyInstance } from 'fastify';
import type { ActivityBucket, ConnectionChange } from '../../store/activity.js';
import type { DeliveryRecord } from '../../store/deliveries.js';
import { INCOMING_CLASS, INCOMING_WORDS, providerOf, TOKEN_CLASS } from './accounts-page.js';
import { barChart, latency, periodLabel } from './charts.js';
import { redirectWith, sendPage, sessionOf, takeFlash, type AdminUiDeps } from './context.js';
import { html, type SafeHtml } from './html.js';
import { page } from './layout.js';
import { accountProblem, plainError, sentence, when } from './plain-words.js';
import { accountNamed } from '../../config/lookup.js';

const HOUR_MS = 3_600_000;
/** The charts: the last 24 whole hours, the current one included. */
export const CHART_HOURS = 24;
/** Rows of connection history shown (the store keeps up to CONNECTION_HISTORY_KEEP). */
export const HISTORY_ROWS = 50;
/** Recent errors shown, from the history and failed deliveries of the last 24 hours. */
export const ERROR_ROWS = 20;
/** Characters of a webhook's answer quoted in an error. */
const EXCERPT_CHARS = 200;
/** An account name from the URL is quoted at most this long in a message. */
const NAME_CHARS = 100;

const iso = (t: number) => new Date(t).toISOString();
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * A recorded error as a sentence: a socket code in plain words (plain-words.ts),
 * and a leading error code ("CONNECTION_FAILED: …") left out: it is for scripts,
 * the words after it are for the admin.
 */
export function errorSentence(error: string | null, target: string): string {
  if (!error) return 'No reason was recorded.';
  const plain = plainError(error, target);
  const words = plain === error ? error.replace(/^[A-Z][A-Z0-9_]{2,}: (?=\S)/, '') : plain;
  return sentence(words.charAt(0).toUpperCase() + words.slice(1));
}

/** The servers an account's history is about, named as the admin configured them. */
export interface HistoryTargets {
  incoming: string;
  outgoing: string;
}

const GENERIC_TARGETS: HistoryTargets = { incoming: 'the incoming server', outgoing: 'the outgoing server' };

/** One change of the connection history in an admin's words. */
export function changeWords(c: Pick<ConnectionChange, 'side' | 'state' | 'error'>, targets: HistoryTargets = GENERIC_TARGETS): string {
  const why = (target: string) => errorSentence(c.error, target);
  if (c.side === 'outgoing') return c.state === 'ok' ? `Sending works: ${targets.outgoing} took a message.` : `Sending through ${targets.outgoing} failed. ${why(targets.outgoing)}`;
  switch (c.state) {
    case 'connected':
      return `Connected to ${targets.incoming}: logged in and receiving mail.`;
    case 'backoff':
      return `Not connected to ${targets.incoming}. ${why(targets.incoming)} mailgate tries again shortly.`;
    case 'error':
      return `Needs attention. ${why(targets.incoming)}`;
    case 'stopped':
      return 'Stopped (mailgate stopped, the account was reloaded or moved to another replica).';
    default:
      return `${c.state}${c.error ? `: ${c.error}` : ''}`;
  }
}

/** A failed delivery in an admin's words: who refused what, and what the receiver said. */
export function failureWords(d: Pick<DeliveryRecord, 'webhook' | 'lastStatus' | 'lastError' | 'responseExcerpt' | 'attempts'>): string {
  const tries = `after ${plural(d.attempts, 'attempt')}`;
  const said = d.responseExcerpt ? ` It answered: “${d.responseExcerpt.length > EXCERPT_CHARS ? `${d.responseExcerpt.slice(0, EXCERPT_CHARS)}…` : d.responseExcerpt}”` : '';
  if (d.lastStatus !== null) return `Webhook ${d.webhook} refused the message with HTTP ${d.lastStatus} ${tries}.${said} Fix the receiver, then retry it on the Deliveries page.`;
  return `Webhook ${d.webhook} could not be reached ${tries}. ${errorSentence(d.lastError, `webhook ${d.webhook}`)} Retry it on the Deliveries page once it answers.`;
}

function totals(buckets: ActivityBucket[]) {
  const sum = (k: 'received' | 'acknowledged' | 'failed') => buckets.reduce((a, b) => a + b[k], 0);
  const busiest = (k: 'received' | 'acknowledged' | 'failed') => buckets.reduce<ActivityBucket | null>((best, b) => (b[k] > 0 && (!best || b[k] > best[k]) ? b : best), null);
  const slowest = buckets.reduce<ActivityBucket | null>((best, b) => (b.latencyMaxMs !== null && (!best || b.latencyMaxMs > (best.latencyMaxMs ?? -1)) ? b : best), null);
  return { received: sum('received'), acknowledged: sum('acknowledged'), failed: sum('failed'), busiest, slowest };
}

/** The totals, the four charts and their table, or the empty state. */
export function activitySection(buckets: ActivityBucket[]): SafeHtml {
  const t = totals(buckets);
  if (t.received + t.acknowledged + t.failed === 0) return html`<p class="empty">No mail in the last ${CHART_HOURS} hours.</p>`;
  const countSummary = (label: string, k: 'received' | 'acknowledged' | 'failed') => {
    const b = t.busiest(k);
    return `${label} in the last ${CHART_HOURS} hours: ${t[k]} in total${b ? `; most in one hour: ${b[k]} (${periodLabel(b.start, HOUR_MS)})` : ''}.`;
  };
  const medians = buckets.filter((b) => b.latencyP50Ms !== null).map((b) => b.latencyP50Ms as number);
  const latencySummary = t.slowest
    ? `Delivery latency in the last ${CHART_HOURS} hours (from receipt to the webhook's acknowledgement): hourly medians from ${latency(Math.min(...medians))} to ${latency(Math.max(...medians))}; longest ${latency(t.slowest.latencyMaxMs ?? 0)} (${periodLabel(t.slowest.start, HOUR_MS)}).`
    : `Delivery latency in the last ${CHART_HOURS} hours: nothing was acknowledged.`;
  const bars = (k: 'received' | 'acknowledged' | 'failed') => buckets.map((b) => ({ start: b.start, value: b[k] }));
  const rows = buckets.map(
    (b) => html`<tr><th scope="row">${periodLabel(b.start, HOUR_MS)}</th><td>${b.received}</td><td>${b.acknowledged}</td><td>${b.failed}</td><td>${b.latencyP50Ms === null ? '—' : latency(b.latencyP50Ms)}</td><td>${b.latencyMaxMs === null ? '—' : latency(b.latencyMaxMs)}</td></tr>`,
  );
  return html`<p class="totals"><span data-figure="received">${t.received}</span> received · <span data-figure="acknowledged">${t.acknowledged}</span> acknowledged by the webhook · <span data-figure="failed">${t.failed}</span> failed. Hours in UTC.</p>
<div class="charts">
${barChart({ id: 'received', label: 'Messages received', tone: 'received', bars: bars('received'), periodMs: HOUR_MS, summary: countSummary('Messages received', 'received') })}
${barChart({ id: 'acknowledged', label: 'Deliveries acknowledged', tone: 'acknowledged', bars: bars('acknowledged'), periodMs: HOUR_MS, summary: countSummary('Deliveries acknowledged', 'acknowledged') })}
${barChart({ id: 'failed', label: 'Deliveries failed', tone: 'failed', bars: bars('failed'), periodMs: HOUR_MS, summary: countSummary('Deliveries failed', 'failed') })}
${barChart({
  id: 'latency',
  label: 'Delivery latency (median, with the longest)',
  tone: 'latency',
  bars: buckets.map((b) => ({ start: b.start, value: b.latencyP50Ms, mark: b.latencyMaxMs })),
  periodMs: HOUR_MS,
  format: latency,
  markLabel: 'longest',
  summary: latencySummary,
})}
</div>
<details class="figures">
<summary>The figures of the charts, hour by hour</summary>
<table>
<caption>Last ${CHART_HOURS} hours, per hour (UTC)</caption>
<thead><tr><th scope="col">Hour</th><th scope="col">Received</th><th scope="col">Acknowledged</th><th scope="col">Failed</th><th scope="col">Median latency</th><th scope="col">Longest</th></tr></thead>
<tbody>${rows}</tbody>
</table>
</details>`;
}

function historyTable(changes: ConnectionChange[], targets: HistoryTargets, now: number): SafeHtml {
  if (changes.length === 0) return html`<p>No connection changes recorded yet.</p>`;
  const tone = (c: ConnectionChange) => (c.state === 'connected' || c.state === 'ok' ? 'state-ok' : c.state === 'backoff' ? 'state-warn' : c.state === 'error' ? 'state-bad' : '');
  return html`<table class="history">
<caption>Connection history (newest first, at most ${HISTORY_ROWS})</caption>
<thead><tr><th scope="col">When</th><th scope="col">Side</th><th scope="col">What happened</th></tr></thead>
<tbody>${changes.map(
    (c) => html`<tr><td>${when(iso(c.at), now)}</td><td>${c.side}</td><td><span class="${tone(c)}">${changeWords(c, targets)}</span></td></tr>`,
  )}</tbody>
</table>`;
}

function errorList(changes: ConnectionChange[], failures: DeliveryRecord[], targets: HistoryTargets, since: number, now: number): SafeHtml {
  const items = [
    ...changes.filter((c) => c.error !== null && c.at >= since).map((c) => ({ at: c.at, text: html`${changeWords(c, targets)}` })),
    ...failures.map((d) => ({
      at: d.updatedAt,
      text: html`${failureWords(d)} <a href="/admin/deliveries/${encodeURIComponent(d.id)}">Delivery <code>${d.id}</code></a>`,
    })),
  ]
    .sort((a, b) => b.at - a.at)
    .slice(0, ERROR_ROWS);
  if (items.length === 0) return html`<p>No errors in the last ${CHART_HOURS} hours.</p>`;
  return html`<ul class="errors-list">${items.map((i) => html`<li>${when(iso(i.at), now)}: ${i.text}</li>`)}</ul>`;
}

export function registerAccountPage(admin: FastifyInstance, deps: AdminUiDeps): void {
  // One account: its state, its last 24 hours as charts, its connection history and recent errors.
  admin.get('/accounts/:name', async (req, reply) => {
    const session = sessionOf(req);
    const { name } = req.params as { name: string };
    const cfg = accountNamed(deps.config(), name);
    if (!cfg) {
      const shown = name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS)}…` : name;
      return redirectWith(req, reply, '/admin/accounts', { kind: 'error', text: `There is no account ${shown}.` });
    }
    const now = Date.now();
    const until = Math.floor(now / HOUR_MS) * HOUR_MS + HOUR_MS;
    const since = until - CHART_HOURS * HOUR_MS;
    const credential = deps.tokens.credentialNameOf(cfg);
    const [buckets, changes, failures, sides, token, provider, owners, lastMessage] = await Promise.all([
      deps.store.activity.accountActivity(name, { since, until, bucketMs: HOUR_MS }),
      deps.store.connectionHistory.recent(name, HISTORY_ROWS),
      deps.store.activity.recentFailures(name, now - CHART_HOURS * HOUR_MS, ERROR_ROWS),
      deps.store.accountStatus.forAccount(name),
      deps.tokens.status(name),
      providerOf(deps, credential),
      deps.accounts.owners?.() ?? Promise.resolve(new Map<string, string>()),
      deps.store.messages.lastReceivedAt(name),
    ]);
    const live = deps.accounts.incoming(name);
    const stored = (side: 'incoming' | 'outgoing') => sides.find((s) => s.side === side) ?? null;
    const inStored = stored('incoming');
    const outStored = stored('outgoing');
    const state = !cfg.enabled ? 'paused' : (live?.state ?? inStored?.state ?? 'stopped');
    const incomingError = live ? live.lastError : (inStored?.lastError ?? null);
    const lastSuccess = live?.lastSuccessAt ? live.lastSuccessAt.getTime() : (inStored?.lastSuccessAt ?? null);
    const usesOAuth = credential !== null;
    const problem = accountProblem({ token, usesOAuth, provider, incomingError, outgoingError: outStored?.lastError ?? null });
    const owner = owners.get(name) ?? null;
    const tIso = (t: number | null) => (t === null ? null : iso(t));
    const targets: HistoryTargets = {
      incoming: `the ${cfg.incoming.protocol.toUpperCase()} server ${cfg.incoming.host}:${cfg.incoming.port}`,
      outgoing: cfg.outgoing ? `the SMTP server ${cfg.outgoing.host}:${cfg.outgoing.port}` : GENERIC_TARGETS.outgoing,
    };
    const body = html`<p><a href="/admin/accounts">← Accounts</a></p>
<dl class="summary">
<dt>Address</dt><dd>${cfg.email}</dd>
<dt>Incoming</dt><dd>${cfg.incoming.protocol.toUpperCase()} ${cfg.incoming.host}:${cfg.incoming.port}: <span class="${INCOMING_CLASS[state] ?? ''}">${state === 'paused' ? 'paused (disabled in the config file)' : (INCOMING_WORDS[state] ?? state)}</span>; last success ${when(tIso(lastSuccess), now)}</dd>
<dt>Outgoing</dt><dd>${cfg.outgoing ? html`${cfg.outgoing.host}:${cfg.outgoing.port}: ${outStored?.lastError ? html`<span class="state-bad">error</span>` : 'configured'}; last success ${when(tIso(outStored?.lastSuccessAt ?? null), now)}` : 'not configured'}</dd>
<dt>Token</dt><dd>${usesOAuth ? html`<span class="${TOKEN_CLASS[token.state] ?? ''}">${token.state.replace('_', ' ')}</span>${token.expiresAt ? html`, expires ${when(token.expiresAt, now)}` : null}` : 'password login'}</dd>
<dt>Replica</dt><dd>${owner ?? html`<span class="state-warn">none</span>`}</dd>
<dt>Last message</dt><dd>${when(tIso(lastMessage), now)}</dd>
<dt>Problem</dt><dd>${problem ?? 'none'}</dd>
</dl>
<h2>Last ${CHART_HOURS} hours</h2>
${activitySection(buckets)}
<h2>Recent errors</h2>
${errorList(changes, failures, targets, now - CHART_HOURS * HOUR_MS, now)}
<h2>Connection history</h2>
${historyTable(changes, targets, now)}`;
    return sendPage(reply, page({ title: `Account ${name}`, section: 'accounts', session, flash: takeFlash(req), body }));
  });
}
