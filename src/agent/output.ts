// The shapes assume-role prints. Credentials only ever go to stdout (or a 0600
// file with --out); stderr carries notes and errors, never a secret.
import { quoteShell } from './files.js';
import type { AssumedRole } from './sts.js';

export const FORMATS = ['env', 'dotenv', 'json', 'credential-process', 'shared-credentials', 'web-identity'] as const;

/** The profile `--format shared-credentials` writes: point AWS_PROFILE at it, AWS_SHARED_CREDENTIALS_FILE at the file. */
export const SHARED_CREDENTIALS_PROFILE = 'jenkins-oidc';
export type Format = (typeof FORMATS)[number];

function variables(role: AssumedRole, region: string): [string, string][] {
  return [
    ['AWS_ACCESS_KEY_ID', role.credentials.AccessKeyId],
    ['AWS_SECRET_ACCESS_KEY', role.credentials.SecretAccessKey],
    ['AWS_SESSION_TOKEN', role.credentials.SessionToken],
    ['AWS_CREDENTIAL_EXPIRATION', role.credentials.Expiration],
    ['AWS_REGION', region],
    ['AWS_DEFAULT_REGION', region],
  ];
}

export function exportLines(vars: [string, string][]): string {
  return vars.map(([k, v]) => `export ${k}=${quoteShell(v)}\n`).join('');
}

export function renderCredentials(format: Exclude<Format, 'web-identity'>, role: AssumedRole, region: string): string {
  switch (format) {
    case 'env':
      return exportLines(variables(role, region));
    case 'dotenv':
      // Values are base64, ISO dates and region names: nothing a dotenv reader needs quoted.
      return variables(role, region).map(([k, v]) => `${k}=${v}\n`).join('');
    case 'json':
      // The shape of `aws sts assume-role-with-web-identity`, plus the region.
      return `${JSON.stringify(
        {
          Credentials: role.credentials,
          AssumedRoleUser: role.assumedRoleUser,
          SubjectFromWebIdentityToken: role.subjectFromWebIdentityToken,
          Audience: role.audience,
          Provider: role.provider,
          ...(role.sourceIdentity && { SourceIdentity: role.sourceIdentity }),
          Region: region,
        },
        null,
        2,
      )}\n`;
    case 'shared-credentials':
      // An AWS shared credentials file (https://docs.aws.amazon.com/sdkref/latest/guide/file-format.html):
      // the Jenkins library has the agent write it with --out, so keys never pass through the controller.
      return [
        `[${SHARED_CREDENTIALS_PROFILE}]`,
        `aws_access_key_id = ${role.credentials.AccessKeyId}`,
        `aws_secret_access_key = ${role.credentials.SecretAccessKey}`,
        `aws_session_token = ${role.credentials.SessionToken}`,
        '',
      ].join('\n');
    case 'credential-process':
      // https://docs.aws.amazon.com/sdkref/latest/guide/feature-process-credentials.html
      return `${JSON.stringify({ Version: 1, ...role.credentials })}\n`;
  }
}
