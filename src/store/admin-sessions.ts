export interface AdminSessionFlash {
  kind: 'ok' | 'error';
  text: string;
}

/** A signed-in admin web UI session (src/http/admin/session.ts). */
export interface AdminSessionRecord {
  /** The cookie value. Implementations store only its SHA-256 hash, never the value. */
  id: string;
  /** The session's CSRF token, sent back by every form. */
  csrf: string;
  /** A message shown once on the next page (post/redirect/get). */
  flash: AdminSessionFlash | null;
  createdAt: number;
  expiresAt: number;
}

export interface AdminSessionRepo {
  create(rec: AdminSessionRecord): Promise<void>;
  /** The session with this id if it is live at `now`; an expired one is deleted on the way. */
  get(id: string, now: number): Promise<AdminSessionRecord | null>;
  /** Replaces the session's flash message; false when there is no such session. */
  setFlash(id: string, flash: AdminSessionFlash | null): Promise<boolean>;
  delete(id: string): Promise<boolean>;
  /** Deletes every session expired at `now`; returns how many. */
  pruneExpired(now: number): Promise<number>;
}
