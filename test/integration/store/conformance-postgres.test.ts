import { afterAll, beforeAll } from 'vitest';
import { startPostgres } from '../../harness/index.js';
import { defineStoreConformance } from '../../store/conformance/index.js';
import { type PgFixture, pgUnderTest } from './pg-under-test.js';

/** The one store suite, on a real PostgreSQL (Debian's, started by the harness): every test SQLite passes. */
let fx: PgFixture | null = null;

beforeAll(async () => {
  const server = await startPostgres();
  fx = { server, dbUrl: await server.createDatabase() };
});

afterAll(async () => {
  await fx?.server.stop();
});

defineStoreConformance('postgres', () => {
  if (!fx) throw new Error('PostgreSQL did not start');
  return pgUnderTest(fx);
});
