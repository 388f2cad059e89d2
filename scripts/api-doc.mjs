#!/usr/bin/env node
// Writes docs/api.md from the OpenAPI document the daemon serves (GET /openapi.json),
// built from the code in dist/ (run `npm run build` first). A test checks docs/api.md is current.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const { App } = await import(join(root, 'dist/app.js'));
const { buildDaemon } = await import(join(root, 'dist/daemon.js'));
const { silentLogger } = await import(join(root, 'dist/log.js'));
const { renderApiReference } = await import(join(root, 'dist/http/api-doc.js'));

const dir = mkdtempSync(join(tmpdir(), 'mg-apidoc-'));
try {
  const config = join(dir, 'mailgate.yaml');
  writeFileSync(config, 'server:\n  listen: 127.0.0.1:1\ndataDir: ./data\n');
  const app = await App.create({ configPath: config, env: {}, logger: silentLogger() });
  buildDaemon(app);
  await app.ctx.http.ready();
  const doc = app.ctx.http.swagger();
  await app.stop();
  writeFileSync(join(root, 'docs/api.md'), renderApiReference(doc));
  console.error('docs/api.md written');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
