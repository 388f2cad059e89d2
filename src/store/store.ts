import type { ActivityRepo, ConnectionHistoryRepo } from './activity.js';
import type { AdminSessionRepo } from './admin-sessions.js';
import type { LeaseRepo, LockRepo, NodeRepo, WakeBus } from './cluster.js';
import type { DeliveryRepo } from './deliveries.js';
import type { AccountStatusRepo, MetaRepo } from './meta.js';
import type { IngestRepo, MessageRepo } from './messages.js';
import type { CredentialRepo, OAuthStateRepo, TokenRepo } from './oauth.js';
import type { OutboxRepo } from './outbox.js';

/**
 * The storage boundary, and everything a backend must do to be "the store".
 * Everything above src/store talks to these small async interfaces, opened
 * by `openStore` (./open.ts); SQLite (./sqlite) is the embedded default and
 * a PostgreSQL backend for several replicas implements the same ones. The
 * conformance suite in test/store/conformance is the executable definition:
 * every backend runs it.
 *
 * What every backend promises:
 * - Each method is one transactional unit; the ones that span tables say so
 *   (IngestRepo.insertMessages, DeliveryRepo.markDelivered).
 * - Several stores may work on one storage at once (the CLI next to the
 *   daemon, replicas): what one commits, the others read at once, and the
 *   atomic steps (insertMessages, OAuthStateRepo.consume,
 *   OutboxRepo.claimDue and enqueue, MetaRepo.setIfAbsent) hold across them.
 * - Time comes from the caller: every write that records a time takes `now`
 *   (epoch ms); nothing reads the clock inside a store.
 * - Secrets (client secrets, tokens, PKCE verifiers) cross this boundary in
 *   plaintext and are sealed at rest by the backend with the key it was
 *   opened with; an admin session is kept only as the hash of its id.
 * - A write refused because the storage is full rejects with an error that
 *   `isStorageFull` (./health.ts) recognises; a backend adds its codes there.
 * - After close(), every method rejects (none hangs or throws synchronously)
 *   and ping() answers false; what was accepted before close() is committed.
 */
export interface Store {
  readonly meta: MetaRepo;
  readonly credentials: CredentialRepo;
  readonly tokens: TokenRepo;
  readonly oauthStates: OAuthStateRepo;
  readonly accountStatus: AccountStatusRepo;
  readonly ingest: IngestRepo;
  readonly messages: MessageRepo;
  readonly deliveries: DeliveryRepo;
  readonly outbox: OutboxRepo;
  readonly adminSessions: AdminSessionRepo;
  /** The admin UI's account page (./activity.ts): an account's mail in time buckets, and its connection history. */
  readonly activity: ActivityRepo;
  readonly connectionHistory: ConnectionHistoryRepo;
  /** Several replicas (./cluster.ts): account leases, membership, named locks, wake-ups. */
  readonly leases: LeaseRepo;
  readonly nodes: NodeRepo;
  readonly locks: LockRepo;
  readonly bus: WakeBus;
  /** Cheap liveness probe for /readyz. */
  ping(): Promise<boolean>;
  /**
   * A backend on a server (PostgreSQL) that openStore returned before the
   * server could be reached (the daemon starts anyway): resolves once it was
   * reached, migrated and its key checked; rejects when it never can be (a
   * newer schema, another key) or the store was closed first. Meanwhile every
   * method rejects with a transient error. Absent: ready when returned.
   */
  readonly opened?: Promise<void>;
  /**
   * Reports when the storage cannot be reached (with the reason, at once when
   * that is already so) and when it answers again (null). Absent: embedded
   * storage, reachable as long as the process runs. Returns an unsubscribe.
   */
  watch?(listener: (reason: string | null) => void): () => void;
  /**
   * A consistent copy of the whole storage in `file` (which must not exist),
   * taken while other stores on the same storage (the daemon) keep writing:
   * what was committed when the copy finished, nothing half-written. The
   * copy opens with the same secret key.
   */
  backup(file: string): Promise<{ bytes: number }>;
  /** Commits what was accepted, stops background work and releases the storage. Idempotent. */
  close(): Promise<void>;
}
