import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { SecretCipher } from '../../../src/secrets/cipher.js';
import { silentLogger } from '../../../src/log.js';
import { openStore } from '../../../src/store/open.js';
import { PG_TABLES } from '../../../src/store/postgres/migrations.js';
import type { Store } from '../../../src/store/store.js';
import type { Postgres } from '../../harness/index.js';
import type { StoreUnderTest } from '../../store/conformance/index.js';

/** A URL whose connections work in `schema` (search_path), so that every test gets empty tables of its own in one database. */
export function urlWithSchema(dbUrl: string, schema: string): string {
  const u = new URL(dbUrl);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

export async function adminQuery<T extends pg.QueryResultRow = pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

export interface PgFixture {
  server: Postgres;
  /** One database for the file; each store under test gets a schema in it. */
  dbUrl: string;
}

/**
 * The PostgreSQL store on a fresh schema per test, opened the way the daemon
 * opens it (openStore with store.kind postgres: migrations, key check).
 * Peers are more stores (pools) on the same schema, as replicas would be.
 */
export async function pgUnderTest(fx: PgFixture, key: Buffer = randomBytes(32)): Promise<StoreUnderTest & { url: string; schema: string }> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(fx.dbUrl, `CREATE SCHEMA ${schema}`);
  const url = urlWithSchema(fx.dbUrl, schema);
  const opened: Store[] = [];
  const open = async (k: Buffer): Promise<Store> => {
    const s = await openStore(
      { dataDir: '/nonexistent-mailgate-dataDir', store: { kind: 'postgres', url, poolSize: 4 } },
      { cipher: new SecretCipher(k), logger: silentLogger() },
    );
    opened.push(s);
    return s;
  };
  return {
    url,
    schema,
    store: await open(key),
    openPeer: () => open(key),
    openWithOtherKey: () => open(randomBytes(32)),
    // Every row of every table, as PostgreSQL writes it out (bytea as hex): what a dump or a replica's disk would hold.
    rawBytes: async () => {
      const parts: string[] = [];
      for (const t of [...PG_TABLES, 'mailgate_schema']) {
        const rows = await adminQuery<{ row: string }>(fx.dbUrl, `SELECT t::text AS row FROM ${schema}.${t} t`);
        parts.push(...rows.map((r) => r.row));
      }
      return Buffer.from(parts.join('\n'));
    },
    dispose: async () => {
      for (const s of opened.splice(0)) await s.close();
      await adminQuery(fx.dbUrl, `DROP SCHEMA ${schema} CASCADE`);
    },
  };
}
