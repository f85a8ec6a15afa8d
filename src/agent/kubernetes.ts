// Kubernetes: kubectl (and client-go) run an exec credential plugin when they
// need a token, and re-run it once expirationTimestamp has passed
// (https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins).
// The agent is that plugin: it prints a client.authentication.k8s.io/v1
// ExecCredential whose token is a fresh ID token, expiring a little before the
// token does, so kubectl asks again in time however long the build runs. The
// kubeconfig it writes holds no secret: the plugin reads the build request
// token from the environment kubectl passes on.
import { usage } from './errors.js';
import type { TokenClaims } from './id-token.js';

export const EXEC_API_VERSION = 'client.authentication.k8s.io/v1';

/** Seconds before the token's exp at which kubectl is told the credential expires. */
export const EXPIRY_MARGIN_S = 30;

/** kubectl says which ExecCredential version it reads in KUBERNETES_EXEC_INFO; only v1 is answered. */
export function checkExecInfo(raw: string | undefined): void {
  if (!raw) return;
  let info: { apiVersion?: unknown };
  try {
    info = JSON.parse(raw) as { apiVersion?: unknown };
  } catch {
    throw usage('KUBERNETES_EXEC_INFO is not JSON');
  }
  if (info.apiVersion !== EXEC_API_VERSION) {
    throw usage(`kubectl asked for an ExecCredential ${String(info.apiVersion)}; this agent answers ${EXEC_API_VERSION}: set apiVersion: ${EXEC_API_VERSION} in the kubeconfig's exec section`);
  }
}

export function execCredential(jwt: string, claims: TokenClaims): string {
  const exp = typeof claims.exp === 'number' ? claims.exp : Math.floor(Date.now() / 1000) + 60;
  const expires = new Date(Math.max(exp - EXPIRY_MARGIN_S, Math.floor(Date.now() / 1000)) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `${JSON.stringify({ apiVersion: EXEC_API_VERSION, kind: 'ExecCredential', status: { token: jwt, expirationTimestamp: expires } })}\n`;
}

export interface KubeconfigInput {
  server: string;
  certificateAuthorityData?: string;
  node: string;
  script: string;
  audience: string;
}

/** A kubeconfig (JSON, which kubectl reads as YAML) with one cluster, one exec user and one context. */
export function kubeconfig(input: KubeconfigInput): string {
  const cluster: Record<string, string> = { server: input.server };
  if (input.certificateAuthorityData) cluster['certificate-authority-data'] = input.certificateAuthorityData;
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'jenkins-oidc', cluster }],
      users: [
        {
          name: 'jenkins-oidc',
          user: {
            exec: {
              apiVersion: EXEC_API_VERSION,
              command: input.node,
              args: [input.script, 'kube-credential', '--audience', input.audience],
              interactiveMode: 'Never',
              provideClusterInfo: false,
            },
          },
        },
      ],
      contexts: [{ name: 'jenkins-oidc', context: { cluster: 'jenkins-oidc', user: 'jenkins-oidc' } }],
      'current-context': 'jenkins-oidc',
    },
    null,
    2,
  )}\n`;
}

export function checkServer(server: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw usage(`--server must be the API server's URL such as https://k8s.example.com:6443, got "${server}"`);
  }
  // The ID token is a bearer secret; kube-apiserver serves https only.
  if (url.protocol !== 'https:') throw usage(`--server must be https, got ${url.origin}`);
  return server;
}
