import type { SecretCipher } from '../../secrets/cipher.js';
import type { CredentialRepo, StoredCredential } from '../oauth.js';
import type { Db } from './db.js';
import { credentialFromRow, type CredentialRow } from '../oauth-rows.js';

export class SqliteCredentialRepo implements CredentialRepo {
  constructor(
    private readonly db: Db,
    private readonly cipher: SecretCipher,
  ) {}


  async list(): Promise<StoredCredential[]> {
    const rows = this.db.prepare('SELECT * FROM credentials ORDER BY name').all() as CredentialRow[];
    return rows.map((r) => credentialFromRow(this.cipher, r));
  }

  async get(name: string): Promise<StoredCredential | null> {
    const row = this.db.prepare('SELECT * FROM credentials WHERE name = ?').get(name) as CredentialRow | undefined;
    return row ? credentialFromRow(this.cipher, row) : null;
  }

  async upsert(c: Omit<StoredCredential, 'createdAt' | 'updatedAt'>, now: number): Promise<StoredCredential> {
    this.db
      .prepare(
        `INSERT INTO credentials (name, provider, client_id, client_secret_enc, settings_json, created_at, updated_at)
         VALUES (@name, @provider, @clientId, @secret, @settings, @now, @now)
         ON CONFLICT(name) DO UPDATE SET provider = excluded.provider, client_id = excluded.client_id,
           client_secret_enc = excluded.client_secret_enc, settings_json = excluded.settings_json,
           updated_at = excluded.updated_at`,
      )
      .run({
        name: c.name,
        provider: c.provider,
        clientId: c.clientId,
        secret: this.cipher.sealOrNull(c.clientSecret),
        settings: JSON.stringify(c.settings),
        now,
      });
    const saved = await this.get(c.name);
    if (!saved) throw new Error(`credential ${c.name} vanished after upsert`);
    return saved;
  }

  async remove(name: string): Promise<boolean> {
    return this.db.prepare('DELETE FROM credentials WHERE name = ?').run(name).changes > 0;
  }
}
