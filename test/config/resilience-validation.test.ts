import { describe, expect, it } from 'vitest';
import { MeshConfigError } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { summarize } from './helpers.js';

const rule = (trafficPolicy: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy: ${trafficPolicy}
  subsets:
  - name: v1
    labels: { version: v1 }
    trafficPolicy:
      portLevelSettings:
      - port: { number: 9080 }
        outlierDetection: { maxEjectionPercent: 120 }
`;

/** The error lines a configuration is rejected with. */
async function rejection(yaml: string): Promise<string[]> {
  try {
    const mesh = await createMesh({ namespace: 'shop', config: docs(yaml), watch: false, dns: false });
    await mesh.close();
  } catch (error) {
    expect(error).toBeInstanceOf(MeshConfigError);
    return summarize((error as MeshConfigError).issues.filter((i) => i.severity === 'error'));
  }
  return [];
}

describe('DestinationRule resilience settings istiod would refuse are rejected with the field named', () => {
  it('percentages out of range, local-origin failures without the split, negative limits, an empty pool', async () => {
    expect(
      await rejection(
        rule(`
    outlierDetection: { minHealthPercent: -1, consecutiveLocalOriginFailures: 3 }
    connectionPool: { tcp: { maxConnections: -2, idleTimeout: -1s }, http: { http1MaxPendingRequests: -1 } }
    retryBudget: { budgetInterval: -5s }`),
      ),
    ).toEqual([
      'error invalid-value spec.trafficPolicy.outlierDetection.minHealthPercent: expected a percentage from 0 to 100, found -1',
      'error invalid-value spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures: consecutiveLocalOriginFailures is set but splitExternalLocalOriginErrors is not true, so it would have no effect (istiod rejects this too)',
      'error invalid-value spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests: expected a number of 0 or more, found -1',
      'error invalid-value spec.trafficPolicy.connectionPool.tcp.maxConnections: expected a number of 0 or more, found -2',
      'error invalid-value spec.trafficPolicy.connectionPool.tcp.idleTimeout: expected a duration of 0 or more, found "-1s"',
      'error invalid-value spec.trafficPolicy.retryBudget.budgetInterval: expected a duration of 0 or more, found "-5s"',
      'error invalid-value spec.subsets[0].trafficPolicy.portLevelSettings[0].outlierDetection.maxEjectionPercent: expected a percentage from 0 to 100, found 120',
    ]);
    expect(await rejection(rule('{ connectionPool: {} }'))).toContain(
      'error invalid-value spec.trafficPolicy.connectionPool: expected at least one of connectionPool.http or connectionPool.tcp, found an empty connectionPool',
    );
  });

  it('schema-level mistakes are reported by the schema walk (compile checks wait until it passes)', async () => {
    expect(await rejection(rule('{ outlierDetection: { interval: 10 seconds, consecutive5xxErrors: -1 }, retryBudget: { percent: 150 } }'))).toEqual([
      'error duration spec.trafficPolicy.outlierDetection.interval: expected a duration such as "1.5s", "100ms" or "1h30m" (units h, m, s, ms, us, ns), found "10 seconds"',
      'error range spec.trafficPolicy.outlierDetection.consecutive5xxErrors: expected an integer from 0 to 4294967295, found -1',
      'error range spec.trafficPolicy.retryBudget.percent: expected a number from 0 to 100, found 150',
    ]);
  });

  it('valid settings are accepted', async () => {
    const yaml = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 3, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 100, minHealthPercent: 50 }
    connectionPool: { tcp: { maxConnections: 10, connectTimeout: 2s, idleTimeout: 0s, tcpKeepalive: { time: 30s } }, http: { http1MaxPendingRequests: 5, maxRetries: 2 } }
    retryBudget: { percent: 25, minRetryConcurrency: 5, budgetInterval: 10s }
`;
    expect(await rejection(yaml)).toEqual([]);
  });
});
