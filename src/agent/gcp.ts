// Google Cloud: an external_account credential file (the format gcloud,
// every Google Cloud client library and `gcloud auth login --cred-file` read)
// whose credential source is this agent as an executable
// (https://google.aip.dev/auth/4117, "executable-sourced credentials"): the
// libraries run it whenever they need a token and exchange the ID token at
// Google's STS themselves, so nothing needs refreshing in the background. The
// file holds no secret. The libraries run executables only with
// GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1, which the agent exports.
import { usage } from './errors.js';
import type { TokenClaims } from './id-token.js';

export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

export interface GcpProvider {
  /** projects/N/locations/global/workloadIdentityPools/P/providers/PR */
  name: string;
  /** The STS audience: //iam.googleapis.com/<name>. */
  stsAudience: string;
  /** The ID token's aud: Google's default allowed audience, https://iam.googleapis.com/<name>. */
  tokenAudience: string;
}

export function parseProvider(value: string): GcpProvider {
  const name = value.replace(/^(https:)?\/\/iam\.googleapis\.com\//, '');
  if (!/^projects\/\d{1,20}\/locations\/global\/workloadIdentityPools\/[a-z0-9-]{4,32}\/providers\/[a-z0-9-]{4,32}$/.test(name)) {
    throw usage(`--provider must be a workload identity provider such as projects/123456789012/locations/global/workloadIdentityPools/jenkins/providers/ci-main, got "${value}"`);
  }
  return { name, stsAudience: `//iam.googleapis.com/${name}`, tokenAudience: `https://iam.googleapis.com/${name}` };
}

function httpsUrl(flag: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usage(`${flag} must be an https URL, got "${value}"`);
  }
  if (url.protocol !== 'https:') throw usage(`${flag} must be https, got ${url.origin}`);
  return value;
}

export interface CredentialFileInput {
  provider: GcpProvider;
  audience: string;
  node: string;
  script: string;
  serviceAccount?: string;
  tokenUrl?: string;
  tokenInfoUrl?: string;
}

export function credentialFile(input: CredentialFileInput): string {
  // The libraries split the command on whitespace, without quoting.
  for (const part of [input.node, input.script, input.audience]) {
    if (/\s/.test(part)) throw usage(`"${part}" contains whitespace, which Google's libraries cannot pass to an executable; install node and the agent under paths without spaces`);
  }
  const file: Record<string, unknown> = {
    type: 'external_account',
    audience: input.provider.stsAudience,
    subject_token_type: JWT_TOKEN_TYPE,
    token_url: httpsUrl('--token-url', input.tokenUrl ?? 'https://sts.googleapis.com/v1/token'),
    token_info_url: httpsUrl('--token-info-url', input.tokenInfoUrl ?? 'https://sts.googleapis.com/v1/introspect'),
    credential_source: { executable: { command: `${input.node} ${input.script} gcp-credential --audience ${input.audience}`, timeout_millis: 30000 } },
  };
  if (input.serviceAccount) {
    if (!/^[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com$/.test(input.serviceAccount)) throw usage(`--service-account must be a service account email, got "${input.serviceAccount}"`);
    file.service_account_impersonation_url = `https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/${input.serviceAccount}:generateAccessToken`;
  }
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** The executable's answer (version 1): the ID token and when it expires. */
export function executableResponse(jwt: string, claims: TokenClaims): string {
  return `${JSON.stringify({ version: 1, success: true, token_type: JWT_TOKEN_TYPE, id_token: jwt, expiration_time: claims.exp })}\n`;
}
