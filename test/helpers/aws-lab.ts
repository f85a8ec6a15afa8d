// Everything a test of the AWS side needs, started for one test file: a test
// CA, the token service behind a TLS-terminating proxy (an https issuer, as
// AWS requires), the STS stand-in trusting that CA, and the environment a
// Jenkins build step gets (request URL and token, STS endpoint, CA trust).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { registerClient, type RegisterClientInput } from '../../src/clients/commands.js';
import { mint, startTestService, type TestService } from './service.js';
import { StsStandIn } from './sts-stand-in.js';
import { createTestCa, type TestCa } from './test-ca.js';
import { startTlsProxy, type TlsProxy } from './tls-proxy.js';

export const ACCOUNT = '123456789012';

export interface AwsLab {
  ca: TestCa;
  proxy: TlsProxy;
  t: TestService;
  sts: StsStandIn;
  /** https://127.0.0.1:<proxy port>: the issuer, and the IAM provider URL. */
  issuer: string;
  providerArn: string;
  home: string;
  secrets: Record<string, string>;
  addClient(input: Omit<RegisterClientInput, 'jenkinsUrl'> & { jenkinsUrl?: string }): Promise<void>;
  /** Mints a request token as the controller would and returns a build step's environment. */
  buildEnv(client: string, build?: Record<string, string>): Promise<Record<string, string>>;
  stop(): Promise<void>;
}

/** `serviceEnv`: more settings of the token service (SIGNING_ALG=ES256 for a relying party that refuses it). */
export async function startAwsLab(serviceEnv: Record<string, string> = {}): Promise<AwsLab> {
  const ca = createTestCa();
  const proxy = await startTlsProxy(ca);
  const t = await startTestService({ ISSUER: proxy.url, TRUST_PROXY: 'true', ...serviceEnv });
  proxy.target = t.url;
  const sts = await new StsStandIn(ca).start();
  const providerArn = sts.addOidcProvider(ACCOUNT, proxy.url, ['sts.amazonaws.com']);
  const home = mkdtempSync(path.join(os.tmpdir(), 'jo-build-home-'));
  const secrets: Record<string, string> = {};
  const lab: AwsLab = {
    ca,
    proxy,
    t,
    sts,
    issuer: proxy.url,
    providerArn,
    home,
    secrets,
    addClient: async (input) => {
      const { secret } = await registerClient(t.database.db, { jenkinsUrl: 'https://jenkins.example.com', ...input }, t.config.requestTokenMaxTtl);
      secrets[input.name] = secret;
    },
    buildEnv: async (client, build = {}) => {
      const minted = await mint(t, secrets[client]!, build, client);
      if (minted.status !== 200) throw new Error(`mint failed: ${minted.text}`);
      return {
        JENKINS_ID_TOKEN_REQUEST_URL: `${proxy.url}/id-token?api-version=1`,
        JENKINS_ID_TOKEN_REQUEST_TOKEN: minted.json.access_token as string,
        NODE_EXTRA_CA_CERTS: ca.rootFile,
        AWS_ENDPOINT_URL_STS: sts.url,
        AWS_REGION: 'eu-west-1',
        HOME: home,
        WORKSPACE_TMP: mkdtempSync(path.join(os.tmpdir(), 'jo-workspace-tmp-')),
      };
    },
    stop: async () => {
      await sts.stop();
      await proxy.close();
      await t.stop();
    },
  };
  return lab;
}

export function trustPolicyFor(providerArn: string, issuer: string, sub: string | string[], extraActions: string[] = []) {
  const prefix = issuer.replace(/^https:\/\//, '');
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow' as const,
        Principal: { Federated: providerArn },
        Action: ['sts:AssumeRoleWithWebIdentity', ...extraActions],
        Condition: { StringEquals: { [`${prefix}:aud`]: 'sts.amazonaws.com' }, StringLike: { [`${prefix}:sub`]: sub } },
      },
    ],
  };
}
