import type { SecretCipher } from '../../secrets/cipher.js';
import type { CredentialRepo, StoredCredential } from '../oauth.js';
import type { Db } from './db.js';

interface CredentialRow {
  name: string;
  provider: string;
  client_id: string;
  client_secret_enc: Buffer | null;
  settings_json: string;
  created_at: number;
  updated_at: number;
}

export class SqliteCredentialRepo implements CredentialRepo {
  constructor(
    private readonly db: Db,
    private readonly cipher: SecretCipher,
  ) {}

  private toRecord(r: CredentialRow): StoredCredential {
    return {
      name: r.name,
      provider: r.provider,
      clientId: r.client_id,
      clientSecret: this.cipher.openOrNull(r.client_secret_enc, `client secret of credential ${r.name}`),
      settings: JSON.parse(r.settings_json) as Record<string, unknown>,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  }

  async list(): Promise<StoredCredential[]> {
    const rows = this.db.prepare('SELECT * FROM credentials ORDER BY name').all() as CredentialRow[];
    return rows.map((r) => this.toRecord(r));
  }

  async get(name: string): Promise<StoredCredential | null> {
    const row = this.db.prepare('SELECT * FROM credentials WHERE name = ?').get(name) as CredentialRow | undefined;
    return row ? this.toRecord(row) : null;
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
