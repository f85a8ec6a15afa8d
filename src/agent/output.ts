// The shapes assume-role prints. Credentials only ever go to stdout (or a 0600
// file with --out); stderr carries notes and errors, never a secret.
import { quoteShell } from './files.js';
import type { AssumedRole } from './sts.js';

export const FORMATS = ['env', 'dotenv', 'json', 'credential-process', 'web-identity'] as const;
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
    case 'credential-process':
      // https://docs.aws.amazon.com/sdkref/latest/guide/feature-process-credentials.html
      return `${JSON.stringify({ Version: 1, ...role.credentials })}\n`;
  }
}
