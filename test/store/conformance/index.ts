import { describe } from 'vitest';
import { defineActivityConformance } from './activity.js';
import { defineAdminSessionConformance } from './admin-sessions.js';
import { defineClusterConformance } from './cluster.js';
import { defineDeliveryConformance } from './deliveries.js';
import type { StoreFactory } from './harness.js';
import { defineIngestConformance } from './ingest.js';
import { defineMessageConformance } from './messages.js';
import { defineOAuthConformance } from './oauth.js';
import { defineOutboxConformance } from './outbox.js';
import { defineSecretsConformance } from './secrets.js';
import { defineStoreWideConformance } from './store.js';

export type { StoreFactory, StoreUnderTest } from './harness.js';

/**
 * The definition of "the store": every backend runs this one suite, through
 * the `Store` interface only (src/store/store.ts and the repository
 * contracts next to it). `factory` makes a fresh, empty store per test,
 * opened the way mailgate opens it (openStore: migrated, key checked); see
 * `StoreUnderTest` for what else it offers (peers on the same storage, the
 * bytes at rest).
 *
 *   defineStoreConformance('sqlite', async () => sqliteUnderTest());
 *
 * Every write that records a time takes it from the caller, so the suite
 * passes times explicitly and nothing sleeps.
 */
export function defineStoreConformance(name: string, factory: StoreFactory): void {
  describe(`store conformance: ${name}`, () => {
    describe('ingest', () => defineIngestConformance(factory));
    describe('messages and acks', () => defineMessageConformance(factory));
    describe('deliveries', () => defineDeliveryConformance(factory));
    describe('outbox', () => defineOutboxConformance(factory));
    describe('oauth', () => defineOAuthConformance(factory));
    describe('admin sessions', () => defineAdminSessionConformance(factory));
    describe('store', () => defineStoreWideConformance(factory));
    describe('secrets', () => defineSecretsConformance(factory));
    describe('cluster', () => defineClusterConformance(factory));
    describe('activity and connection history', () => defineActivityConformance(factory));
  });
}
