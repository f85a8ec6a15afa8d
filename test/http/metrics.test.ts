// Prometheus metrics (issue 10): on their own listener only, with bounded labels.
import { addClient, basic, BUILD, MINT, postForm, startTestService, type TestService } from '../helpers/service.js';
import { VERSION } from '../../src/version.js';
import { sampleValue } from '../helpers/metrics.js';

let t: TestService;
let metricsUrl: string;
beforeAll(async () => {
  // Port 0: the metrics listener takes a free port itself (metricsUrl says which).
  t = await startTestService({ METRICS_PORT: '0' });
  metricsUrl = t.service.metricsUrl!;
});
afterAll(async () => t.stop());

async function scrape(): Promise<string> {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return res.text();
}

test('issued and refused tokens, request latency, pool, keys and build info', async () => {
  const auth = basic('ci-main', (await addClient(t)).secret);
  const minted = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: auth });
  const token = minted.json.access_token as string;
  for (let i = 0; i < 3; i++) {
    expect((await fetch(`${t.url}/id-token?audience=sts.amazonaws.com`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  }
  expect((await fetch(`${t.url}/id-token`, { headers: { authorization: 'Bearer jort_nope' } })).status).toBe(401);
  expect((await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: basic('ci-main', 'jocs_wrong') })).status).toBe(401);

  const text = await scrape();
  expect(sampleValue(text, 'jenkins_oidc_tokens_issued_total{kind="request_token",client="ci-main"}')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_tokens_issued_total{kind="id_token",client="ci-main"}')).toBe(3);
  expect(sampleValue(text, 'jenkins_oidc_tokens_refused_total{event="id_token.refused",reason="invalid_token"}')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_tokens_refused_total{event="token.refused",reason="invalid_client"}')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_http_request_duration_seconds_count{route="id-token",method="GET",status="200"}')).toBe(3);
  expect(sampleValue(text, 'jenkins_oidc_http_request_duration_seconds_count{route="id-token",method="GET",status="401"}')).toBe(1);
  expect(sampleValue(text, `jenkins_oidc_build_info{version="${VERSION}",node="${process.version}",alg="RS256"}`)).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_signing_keys{status="active"}')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_signing_keys{status="pending"}')).toBe(0);
  expect(sampleValue(text, 'jenkins_oidc_signing_key_age_seconds')).toBeGreaterThanOrEqual(0);
  // The active key gets its successor KEY_ROTATION_INTERVAL (30 d) after it started signing.
  expect(sampleValue(text, 'jenkins_oidc_signing_key_next_step_seconds')).toBeGreaterThan(29 * 86400);
  expect(sampleValue(text, 'jenkins_oidc_database_up')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_db_pool_connections')).toBeGreaterThanOrEqual(1);
  expect(sampleValue(text, 'jenkins_oidc_db_pool_waiting_requests')).toBe(0);
  expect(sampleValue(text, 'jenkins_oidc_db_connection_hold_seconds_count')).toBeGreaterThan(0);
  // Three ID tokens one after the other: three statements of one redeem each (the junk token needs none).
  expect(sampleValue(text, 'jenkins_oidc_redeem_batch_size_count')).toBe(3);
  expect(sampleValue(text, 'jenkins_oidc_redeem_batch_size_sum')).toBe(3);
  expect(sampleValue(text, 'jenkins_oidc_redeem_batch_size_bucket{le="1"}')).toBe(3);
  expect(sampleValue(text, 'jenkins_oidc_redeem_backlog')).toBe(0);
  // Connections by kind, and no deadline trouble on a healthy database.
  expect(sampleValue(text, 'jenkins_oidc_db_connections{kind="pool"}')).toBeGreaterThanOrEqual(1);
  expect(sampleValue(text, 'jenkins_oidc_db_connections{kind="listen"}')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_db_connections{kind="retention_lock"}')).toBe(0);
  expect(sampleValue(text, 'jenkins_oidc_db_statement_timeouts_total{by="server"}')).toBe(0);
  expect(sampleValue(text, 'jenkins_oidc_db_statement_timeouts_total{by="client"}')).toBe(0);
  expect(sampleValue(text, 'jenkins_oidc_db_connections_destroyed_total')).toBe(0);
  expect(sampleValue(text, 'jenkins_oidc_db_standby_refused_total')).toBe(0);
  // The last token statement (the third ID token's redeem) succeeded moments ago.
  expect(sampleValue(text, 'jenkins_oidc_token_statement_last_success_age_seconds')).toBeGreaterThanOrEqual(0);
  expect(sampleValue(text, 'jenkins_oidc_token_statement_last_success_age_seconds')).toBeLessThan(30);
  expect(sampleValue(text, 'jenkins_oidc_process_resident_memory_bytes')).toBeGreaterThan(0);
  // No label carries a job name, an audience or a token: the very ones this test sent.
  for (const sent of [BUILD.job, BUILD.build_url, 'sts.amazonaws.com', 'jort_', 'jocs_']) expect(text).not.toContain(sent);
});

test('the public listener never serves metrics; the metrics listener serves nothing else', async () => {
  expect((await fetch(`${t.url}/metrics`)).status).toBe(404);
  const other = await fetch(metricsUrl.replace('/metrics', '/token'));
  expect({ status: other.status, body: await other.text() }).toEqual({ status: 404, body: 'metrics are at /metrics\n' });
});

test('every metric the Grafana dashboard and the alert rules use exists', async () => {
  const { readFileSync } = await import('node:fs');
  const { parse } = await import('yaml');
  const root = new URL('../../deploy/', import.meta.url);
  const alerts = parse(readFileSync(new URL('prometheus/alerts.yaml', root), 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
  const dashboard = JSON.parse(readFileSync(new URL('grafana/jenkins-oidc-dashboard.json', root), 'utf8')) as { panels: { targets: { expr: string }[] }[] };
  const exprs = [...alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)), ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))];
  const used = new Set(exprs.flatMap((e) => e.match(/jenkins_oidc_[a-z0-9_]+/g) ?? []).map((n) => n.replace(/_(bucket|count|sum)$/, '')));
  const text = await scrape();
  const missing = [...used].filter((name) => !text.includes(`# TYPE ${name} `));
  expect(missing).toEqual([]);
  expect(used.size).toBeGreaterThanOrEqual(12);
});
