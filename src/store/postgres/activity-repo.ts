import {
  bucketCount,
  CONNECTION_HISTORY_KEEP,
  MAX_RECENT_FAILURES,
  toBuckets,
  type ActivityBucket,
  type ActivityRepo,
  type ActivityWindow,
  type BucketRows,
  type ConnectionChange,
  type ConnectionHistoryRepo,
} from '../activity.js';
import type { DeliveryRecord } from '../deliveries.js';
import { deliveryFromRow, type DeliveryRow } from '../delivery-row.js';
import type { PgDb } from './db.js';

/** The same reads as SQLite's (sqlite/activity-repo.ts), in PostgreSQL's words. */
export class PgActivityRepo implements ActivityRepo {
  constructor(private readonly db: PgDb) {}

  async accountActivity(account: string, w: ActivityWindow): Promise<ActivityBucket[]> {
    bucketCount(w);
    const p = [account, w.since, w.until, w.bucketMs];
    const rows = await this.db.tx(async (c): Promise<BucketRows> => {
      // One snapshot: the three series agree with each other.
      await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const received = await c.query<BucketRows['received'][number]>(
        `SELECT (received_at - $2::bigint) / $4::bigint AS b, count(*) AS n FROM messages
         WHERE account = $1 AND received_at >= $2 AND received_at < $3 GROUP BY 1`,
        p,
      );
      const acknowledged = await c.query<BucketRows['acknowledged'][number]>(
        `WITH l AS (
           SELECT (d.delivered_at - $2::bigint) / $4::bigint AS b, greatest(d.delivered_at - m.received_at, 0) AS lat
           FROM deliveries d JOIN messages m ON m.id = d.message_ref
           WHERE d.account = $1 AND d.updated_at >= $2 AND d.status = 'delivered' AND d.delivered_at >= $2 AND d.delivered_at < $3
         ), r AS (
           SELECT b, lat, row_number() OVER (PARTITION BY b ORDER BY lat) AS rn, count(*) OVER (PARTITION BY b) AS n FROM l
         )
         SELECT b, count(*) AS n, min(CASE WHEN rn = (n + 1) / 2 THEN lat END) AS p50, max(lat) AS max FROM r GROUP BY b`,
        p,
      );
      const failed = await c.query<BucketRows['failed'][number]>(
        `SELECT (updated_at - $2::bigint) / $4::bigint AS b, count(*) AS n FROM deliveries
         WHERE account = $1 AND updated_at >= $2 AND updated_at < $3 AND status = 'failed' AND message_ref IS NOT NULL GROUP BY 1`,
        p,
      );
      return { received: received.rows, acknowledged: acknowledged.rows, failed: failed.rows };
    });
    return toBuckets(w, rows);
  }

  async recentFailures(account: string, since: number, limit: number): Promise<DeliveryRecord[]> {
    const n = Math.max(0, Math.min(Math.floor(limit), MAX_RECENT_FAILURES));
    const rows = await this.db.rows<DeliveryRow>(
      `SELECT * FROM deliveries WHERE account = $1 AND updated_at >= $2 AND status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT $3`,
      [account, since, n],
    );
    return rows.map(deliveryFromRow);
  }
}

export class PgConnectionHistoryRepo implements ConnectionHistoryRepo {
  constructor(private readonly db: PgDb) {}

  async record(ch: ConnectionChange): Promise<boolean> {
    return this.db.tx(async (c) => {
      const { rows } = await c.query<{ state: string; error: string | null }>(
        'SELECT state, error FROM connection_history WHERE account = $1 AND side = $2 ORDER BY id DESC LIMIT 1',
        [ch.account, ch.side],
      );
      const last = rows[0];
      if (last && last.state === ch.state && last.error === ch.error) return false;
      await c.query('INSERT INTO connection_history (account, side, at, state, error) VALUES ($1, $2, $3, $4, $5)', [ch.account, ch.side, ch.at, ch.state, ch.error]);
      await c.query(
        `DELETE FROM connection_history WHERE account = $1 AND id <= (
           SELECT id FROM connection_history WHERE account = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)`,
        [ch.account, CONNECTION_HISTORY_KEEP],
      );
      return true;
    });
  }

  async recent(account: string, limit: number): Promise<ConnectionChange[]> {
    const n = Math.max(0, Math.min(Math.floor(limit), CONNECTION_HISTORY_KEEP));
    return this.db.rows<ConnectionChange>('SELECT account, side, at, state, error FROM connection_history WHERE account = $1 ORDER BY id DESC LIMIT $2', [account, n]);
  }
}
