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
import type { Db } from './db.js';

export class SqliteActivityRepo implements ActivityRepo {
  constructor(private readonly db: Db) {}

  async accountActivity(account: string, w: ActivityWindow): Promise<ActivityBucket[]> {
    bucketCount(w);
    const p = { account, since: w.since, until: w.until, bucket: w.bucketMs };
    // One read transaction: the three series agree with each other.
    const rows = this.db.transaction((): BucketRows => ({
      received: this.db
        .prepare(
          `SELECT CAST((received_at - @since) / @bucket AS INTEGER) AS b, count(*) AS n FROM messages
           WHERE account = @account AND received_at >= @since AND received_at < @until GROUP BY b`,
        )
        .all(p) as BucketRows['received'],
      // updated_at >= delivered_at (an acknowledgement is a row's last change): the index bounds the scan.
      acknowledged: this.db
        .prepare(
          `WITH l AS (
             SELECT CAST((d.delivered_at - @since) / @bucket AS INTEGER) AS b, max(d.delivered_at - m.received_at, 0) AS lat
             FROM deliveries d JOIN messages m ON m.id = d.message_ref
             WHERE d.account = @account AND d.updated_at >= @since AND d.status = 'delivered'
               AND d.delivered_at >= @since AND d.delivered_at < @until
           ), r AS (
             SELECT b, lat, row_number() OVER (PARTITION BY b ORDER BY lat) AS rn, count(*) OVER (PARTITION BY b) AS n FROM l
           )
           SELECT b, count(*) AS n, min(CASE WHEN rn = (n + 1) / 2 THEN lat END) AS p50, max(lat) AS max FROM r GROUP BY b`,
        )
        .all(p) as BucketRows['acknowledged'],
      failed: this.db
        .prepare(
          `SELECT CAST((updated_at - @since) / @bucket AS INTEGER) AS b, count(*) AS n FROM deliveries
           WHERE account = @account AND updated_at >= @since AND updated_at < @until AND status = 'failed' AND message_ref IS NOT NULL
           GROUP BY b`,
        )
        .all(p) as BucketRows['failed'],
    }))();
    return toBuckets(w, rows);
  }

  async recentFailures(account: string, since: number, limit: number): Promise<DeliveryRecord[]> {
    const n = Math.max(0, Math.min(Math.floor(limit), MAX_RECENT_FAILURES));
    const rows = this.db
      .prepare(`SELECT * FROM deliveries WHERE account = ? AND updated_at >= ? AND status = 'failed' ORDER BY updated_at DESC, id DESC LIMIT ?`)
      .all(account, since, n) as DeliveryRow[];
    return rows.map(deliveryFromRow);
  }
}

export class SqliteConnectionHistoryRepo implements ConnectionHistoryRepo {
  constructor(private readonly db: Db) {}

  async record(c: ConnectionChange): Promise<boolean> {
    return this.db
      .transaction((): boolean => {
        const last = this.db
          .prepare('SELECT state, error FROM connection_history WHERE account = ? AND side = ? ORDER BY id DESC LIMIT 1')
          .get(c.account, c.side) as { state: string; error: string | null } | undefined;
        if (last && last.state === c.state && last.error === c.error) return false;
        this.db
          .prepare('INSERT INTO connection_history (account, side, at, state, error) VALUES (?, ?, ?, ?, ?)')
          .run(c.account, c.side, c.at, c.state, c.error);
        this.db
          .prepare(
            `DELETE FROM connection_history WHERE account = @account AND id <= (
               SELECT id FROM connection_history WHERE account = @account ORDER BY id DESC LIMIT 1 OFFSET @keep)`,
          )
          .run({ account: c.account, keep: CONNECTION_HISTORY_KEEP });
        return true;
      })
      .immediate();
  }

  async recent(account: string, limit: number): Promise<ConnectionChange[]> {
    const n = Math.max(0, Math.min(Math.floor(limit), CONNECTION_HISTORY_KEEP));
    return this.db
      .prepare('SELECT account, side, at, state, error FROM connection_history WHERE account = ? ORDER BY id DESC LIMIT ?')
      .all(account, n) as ConnectionChange[];
  }
}
