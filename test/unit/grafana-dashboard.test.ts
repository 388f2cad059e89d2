import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/metrics.js';

/**
 * deploy/grafana/mailgate.json may only name metrics that GET /metrics
 * really exports (a renamed metric would leave an empty panel nobody notices).
 */
describe('the Grafana dashboard', () => {
  it('references only metric names the registry exports, and uses each of mailgate\'s own metrics', async () => {
    const dashboard = JSON.parse(readFileSync('deploy/grafana/mailgate.json', 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const exported = new Set<string>();
    for (const m of await createMetrics().registry.getMetricsAsJSON()) {
      exported.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(m.name + s);
    }
    const used = new Set<string>();
    for (const p of dashboard.panels) {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) for (const name of t.expr.match(/\bmailgate_[a-z0-9_]+/g) ?? []) used.add(name);
    }
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
    const own = [...exported].filter((n) => !/^mailgate_(process|nodejs)_/.test(n) && !/_(bucket|sum|count)$/.test(n));
    expect(own.filter((n) => ![...used].some((u) => u.startsWith(n)))).toEqual([]);
  });
});
