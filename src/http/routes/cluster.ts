import type { FastifyInstance } from 'fastify';
import type { ClusterView } from '../../cluster/coordinator.js';
import { SCHEMAS } from '../api-schemas.js';

/** GET /v1/cluster: the live nodes, each with the accounts it holds (product.md "Several replicas on PostgreSQL"). */
export function clusterBody(view: ClusterView) {
  return {
    nodes: view.nodes.map((n) => ({
      name: n.name,
      startedAt: new Date(n.startedAt).toISOString(),
      lastSeenAt: new Date(n.lastSeenAt).toISOString(),
      accounts: [...n.accounts].sort(),
    })),
  };
}

export function registerClusterRoute(app: FastifyInstance, view: () => Promise<ClusterView>): void {
  app.get('/cluster', { schema: SCHEMAS.cluster }, async () => clusterBody(await view()));
}
