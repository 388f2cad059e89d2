import { describe, expect, it } from 'vitest';
import { activitySection, changeWords, errorSentence, failureWords } from '../../../src/http/admin/account-page.js';
import { barChart, latency, niceCeil } from '../../../src/http/admin/charts.js';
import type { ActivityBucket } from '../../../src/store/activity.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 11, 1, 0);
const bucket = (i: number, over: Partial<ActivityBucket> = {}): ActivityBucket => ({
  start: T0 + i * H,
  received: 0,
  acknowledged: 0,
  failed: 0,
  latencyP50Ms: null,
  latencyMaxMs: null,
  ...over,
});
const day = (over: Record<number, Partial<ActivityBucket>> = {}) => Array.from({ length: 24 }, (_, i) => bucket(i, over[i] ?? {}));

describe('account page words', () => {
  const targets = { incoming: 'the IMAP server imap.example.com:993', outgoing: 'the SMTP server smtp.example.com:587' };

  it('says each connection change in plain words, with the server it is about and no error code', () => {
    expect(changeWords({ side: 'incoming', state: 'connected', error: null }, targets)).toBe('Connected to the IMAP server imap.example.com:993: logged in and receiving mail.');
    expect(changeWords({ side: 'incoming', state: 'backoff', error: 'CONNECTION_FAILED: the IMAP connection closed' }, targets)).toBe(
      'Not connected to the IMAP server imap.example.com:993. The IMAP connection closed. mailgate tries again shortly.',
    );
    const refused = changeWords({ side: 'incoming', state: 'backoff', error: 'connect ECONNREFUSED 127.0.0.1:993' }, targets);
    expect(refused).not.toContain('ECONNREFUSED');
    expect(refused).toContain('the IMAP server imap.example.com:993');
    expect(changeWords({ side: 'incoming', state: 'error', error: null }, targets)).toBe('Needs attention. No reason was recorded.');
    expect(changeWords({ side: 'outgoing', state: 'error', error: 'the server refused the login: 535 5.7.8' }, targets)).toBe(
      'Sending through the SMTP server smtp.example.com:587 failed. The server refused the login: 535 5.7.8.',
    );
    expect(errorSentence('HTTP 500', 'webhook w')).toBe('HTTP 500.');
  });

  it('says who refused a delivery and what the receiver answered (cut), or that it could not be reached', () => {
    expect(failureWords({ webhook: 'pipeline', lastStatus: 422, lastError: 'HTTP 422', responseExcerpt: 'x'.repeat(300), attempts: 1 })).toBe(
      `Webhook pipeline refused the message with HTTP 422 after 1 attempt. It answered: “${'x'.repeat(200)}…” Fix the receiver, then retry it on the Deliveries page.`,
    );
    const down = failureWords({ webhook: 'pipeline', lastStatus: null, lastError: 'connect ECONNREFUSED 10.0.0.1:443', responseExcerpt: null, attempts: 15 });
    expect(down).toMatch(/^Webhook pipeline could not be reached after 15 attempts\. /);
    expect(down).not.toContain('ECONNREFUSED');
  });
});

describe('account page charts', () => {
  it('shows the empty state when nothing happened in the 24 hours', () => {
    const out = activitySection(day()).value;
    expect(out).toBe('<p class="empty">No mail in the last 24 hours.</p>');
  });

  it('draws four charts of 24 bars with their figures in the accessible names and the table', () => {
    const out = activitySection(day({ 3: { received: 2, acknowledged: 1, latencyP50Ms: 1_500, latencyMaxMs: 1_500 }, 5: { received: 1, failed: 1 } })).value;
    expect(out.match(/<svg /g)).toHaveLength(4);
    expect(out).toContain('aria-label="Messages received in the last 24 hours: 3 in total; most in one hour: 2 (03:00–04:00 UTC)."');
    expect(out).toContain('aria-label="Deliveries failed in the last 24 hours: 1 in total; most in one hour: 1 (05:00–06:00 UTC)."');
    expect(out).toContain('longest 1.5 s (03:00–04:00 UTC)');
    expect(out).toContain('<title>03:00–04:00 UTC: 2</title>');
    expect(out.match(/<tr><th scope="row">/g)).toHaveLength(24);
    // Nothing that needs a style attribute, a script or another origin.
    expect(out).not.toMatch(/style=|<script|https?:/);
  });

  it('escapes what it is given', () => {
    const out = barChart({ id: 'x', label: '<b>l</b>', tone: 'received', bars: [{ start: T0, value: 1 }], periodMs: H, summary: '"><script>' }).value;
    expect(out).not.toContain('<script>');
    expect(out).not.toContain('<b>');
    expect(out).toContain('&quot;&gt;&lt;script&gt;');
  });

  it('writes axis tops and latencies as an admin reads them', () => {
    expect([0, 1, 3, 7, 12, 250, 999].map(niceCeil)).toEqual([1, 1, 5, 10, 20, 500, 1000]);
    expect([850, 1_234, 14_000, 180_000, 9_000_000].map(latency)).toEqual(['850 ms', '1.2 s', '14 s', '3 min', '2.5 h']);
  });
});
