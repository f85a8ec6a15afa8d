// --help text: it teaches the whole flow, because on a build agent this is
// often the only documentation at hand.
export const MAIN_HELP = `jenkins-oidc-agent: AWS credentials for a Jenkins build, from a short-lived signed ID token.

Usage: jenkins-oidc-agent <command> [options]

Commands:
  token          print an ID token, or write it to a file (mode 0600)
  claims         print the claims an ID token carries (what a trust policy matches)
  assume-role    exchange an ID token for AWS credentials (AssumeRoleWithWebIdentity)
  aws-config     write an AWS config profile whose credential_process runs this agent
  vault-login    log in to HashiCorp Vault (JWT auth) and print VAULT_TOKEN for eval, or write it to a 0600 file
  vault-revoke   revoke the build's Vault token (revoke-self) when the build is done
  kubeconfig     write a kubeconfig whose user runs this agent as kubectl's exec credential plugin
  kube-credential  print a client.authentication.k8s.io/v1 ExecCredential (what kubectl runs)
  gcp-config     write a Google external_account credential file whose source is this agent
  gcp-credential print the executable-sourced credential answer (what Google's libraries run)
  azure-credentials  write the ID token to a 0600 file kept fresh, and print AZURE_CLIENT_ID,
                 AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE for eval (Azure SDKs, az login)
  version        print the agent's version
  help [command] this text, or a command's options

The build's environment tells the agent where to ask (the jenkins-oidc pipeline library sets both):
  JENKINS_ID_TOKEN_REQUEST_URL          <issuer>/id-token?api-version=1
  JENKINS_ID_TOKEN_REQUEST_TOKEN        the build request token (jort_...), or
  JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE   a file holding it

Examples:
  eval "$(jenkins-oidc-agent assume-role --role-arn arn:aws:iam::123456789012:role/deploy)"
  aws sts get-caller-identity

  # a build longer than the credentials: the AWS SDK/CLI re-read a token file kept fresh
  eval "$(jenkins-oidc-agent assume-role --role-arn $ROLE --format web-identity --refresh)"

  # several roles in one build: one profile each, refreshed by the SDKs themselves
  eval "$(jenkins-oidc-agent aws-config --role-arn $DEPLOY_ROLE --profile deploy)"
  jenkins-oidc-agent aws-config --role-arn $AUDIT_ROLE --profile audit
  aws --profile audit s3 ls

  # HashiCorp Vault: a token for the build, revoked at the end
  eval "$(jenkins-oidc-agent vault-login --vault-addr https://vault.example.com --role deploy)"
  vault kv get secret/app
  jenkins-oidc-agent vault-revoke

Exit codes: 0 done; 1 refused (by AWS or the token service; the message says why);
2 usage or configuration; 3 unavailable after retries (network, throttling).
Credentials go to stdout or a 0600 file only; never run the env format without eval or --out,
or they would be printed in the build log.`;

const AWS_OPTIONS = `  --role-arn ARN              the IAM role to assume (required)
  --region REGION             STS region and AWS_REGION to export (default $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)
  --audience AUD              ID token audience; must be a client ID of the IAM OIDC provider (default sts.amazonaws.com)
  --session-name NAME         RoleSessionName, 2-64 of [A-Za-z0-9_+=,.@-] (default <job>-<build number> from the token)
  --duration-seconds S        credential lifetime, 900-43200, at most the role's MaxSessionDuration (default 3600)
  --sts-endpoint URL          STS endpoint (default $AWS_ENDPOINT_URL_STS, else the region's public endpoint)
  --allowed-account-ids IDS   refuse roles outside these comma-separated AWS account IDs
  --chain-role-arn ARN        then assume this role with the session's credentials (role chaining; repeatable,
                              in order); the printed credentials are the last role's. AWS caps a chained
                              session at 1 hour; aws-config refreshes it for the SDKs
  --retry-max-attempts N      attempts on throttling, network errors and IDPCommunicationError (default 5);
                              AccessDenied, InvalidIdentityToken, ExpiredTokenException are never retried
  --retry-base-delay-ms MS    first backoff ceiling; full-jitter exponential backoff doubles it (default 500)`;

export const COMMAND_HELP: Record<string, string> = {
  token: `Usage: jenkins-oidc-agent token [--audience AUD] [--out FILE] [--json]

Prints an ID token (a JWT, valid a few minutes) for this build.
  --audience AUD   the aud claim; one of the audiences the build's Jenkins controller allows
                   (default: the controller's first, usually sts.amazonaws.com)
  --out FILE       write it to FILE, created with mode 0600, instead of printing it
  --json           print {"value": token, "claims": {...}} (with --out: {"file", "claims"})`,
  claims: `Usage: jenkins-oidc-agent claims [--audience AUD]

Prints the claims of a fresh ID token as JSON: iss, sub, aud and the build facts a trust
policy can match (its condition keys are <issuer host/path>:sub and :aud).`,
  'assume-role': `Usage: jenkins-oidc-agent assume-role --role-arn ARN [options]

Gets an ID token and calls AWS STS AssumeRoleWithWebIdentity (no AWS credentials needed).
${AWS_OPTIONS}
  --format FORMAT             what to print (default env):
      env                 export lines for eval: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
                          AWS_CREDENTIAL_EXPIRATION, AWS_REGION, AWS_DEFAULT_REGION
      dotenv              the same as KEY=value lines (docker --env-file, dotenv loaders)
      json                the output of aws sts assume-role-with-web-identity, plus Region
      credential-process  the AWS credential_process JSON (Version 1); see aws-config
      shared-credentials  an AWS shared credentials file with the profile jenkins-oidc; with --out FILE,
                          set AWS_SHARED_CREDENTIALS_FILE=FILE and AWS_PROFILE=jenkins-oidc
      web-identity        writes the ID token to a 0600 file and prints AWS_ROLE_ARN,
                          AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_SESSION_NAME: every AWS SDK and
                          the AWS CLI then assume the role themselves and re-read the file on refresh
  --out FILE                  write the output to FILE (mode 0600) instead of stdout
  --token-file FILE           web-identity: where to write the token (default: a per-build file
                              under $WORKSPACE_TMP or the system temporary folder)
  --refresh                   web-identity: keep the token file fresh in the background until the
                              request token stops working, the file is removed, or the build step ends
  --refresh-interval S        web-identity: seconds between refreshes (default: half the token's lifetime)
  --no-verify                 web-identity: do not call STS once now to check that the role admits the build

When AWS refuses, the error says why in plain words and shows the token's iss, aud and sub next to
the trust-policy condition keys they must match.`,
  'aws-config': `Usage: jenkins-oidc-agent aws-config --role-arn ARN [--profile NAME] [options]

Writes a profile into an AWS config file whose credential_process runs
"jenkins-oidc-agent assume-role --format credential-process ...". Every AWS SDK and the AWS CLI
then get and refresh credentials by themselves for as long as the build request token lives.
Prints export lines for AWS_CONFIG_FILE and AWS_PROFILE (--json: the same as JSON).
  --profile NAME              profile name (default jenkins-oidc)
  --config-file FILE          the AWS config file (default $AWS_CONFIG_FILE, else a per-build file)
  --no-verify                 do not call STS once now to check that the role admits the build
${AWS_OPTIONS}

The profile holds no secret: the agent reads the request token from the environment of the
process asking for credentials, so it works only inside this build.`,
  'vault-login': `Usage: jenkins-oidc-agent vault-login --role ROLE [--vault-addr URL] [options]

Gets an ID token and logs in to Vault's JWT auth method (POST /v1/auth/PATH/login {role, jwt}).
Prints export lines for VAULT_ADDR and VAULT_TOKEN (for eval), or with --out writes the Vault
token to FILE (mode 0600) and prints VAULT_ADDR only. Revoke it when done: vault-revoke.
  --role ROLE                 the Vault role (jenkins-oidc vault setup prints one)
  --vault-addr URL            Vault's address (default $VAULT_ADDR); https, or http on this machine only
  --namespace NS              Vault Enterprise namespace (default $VAULT_NAMESPACE)
  --path PATH                 mount path of the JWT auth method (default jwt)
  --audience AUD              ID token audience; the role's bound_audiences (default vault)
  --out FILE                  write the Vault token to FILE (mode 0600) instead of printing it
  --json                      print {"client_token" (or "file"), "lease_duration", "policies", "metadata"}
  --retry-max-attempts N      attempts when Vault or the token service does not answer, or answers 5xx/429 (default 5)
  --retry-base-delay-ms MS    first backoff ceiling (default 500)

When Vault refuses, the error gives Vault's words and the token's iss, aud, sub and job beside them.
Vault's CA: set NODE_EXTRA_CA_CERTS=ca.pem for a private CA.`,
  'vault-revoke': `Usage: jenkins-oidc-agent vault-revoke [--token-file FILE] [--vault-addr URL]

Revokes the build's Vault token (POST /v1/auth/token/revoke-self) and removes --token-file.
The token comes from --token-file, else $VAULT_TOKEN. A token Vault no longer knows is not an error.
  --vault-addr URL            Vault's address (default $VAULT_ADDR)
  --namespace NS              Vault Enterprise namespace (default $VAULT_NAMESPACE)`,
  kubeconfig: `Usage: jenkins-oidc-agent kubeconfig --server URL [--certificate-authority FILE] [options]

Writes a kubeconfig (mode 0600) whose user is this agent as an exec credential plugin, and prints
export KUBECONFIG=FILE. kubectl then runs "jenkins-oidc-agent kube-credential" whenever it needs a
token, and again when the last one expires: it works for as long as the build request token lives.
The file holds no secret.
  --server URL                the API server, https (e.g. https://k8s.example.com:6443)
  --certificate-authority F   the API server's CA (PEM), embedded in the kubeconfig
  --audience AUD              ID token audience: the cluster's issuer.audiences (default kubernetes)
  --out FILE                  where to write it (default: a per-build file under $WORKSPACE_TMP)`,
  'kube-credential': `Usage: jenkins-oidc-agent kube-credential [--audience AUD]

Prints a client.authentication.k8s.io/v1 ExecCredential with a fresh ID token and an
expirationTimestamp 30 s before the token expires. kubectl runs it (see kubeconfig); it is not
meant to be run by hand: its output holds the token.
  --audience AUD              ID token audience (default kubernetes)`,
  'gcp-config': `Usage: jenkins-oidc-agent gcp-config --provider PROVIDER [options]

Writes an external_account credential file (mode 0600) whose credential source is this agent as an
executable, and prints export lines for GOOGLE_APPLICATION_CREDENTIALS,
CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE and GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1. gcloud
(also: gcloud auth login --cred-file=FILE) and Google's client libraries then exchange a fresh ID
token at Google's STS whenever they need one. The file holds no secret.
  --provider PROVIDER         projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/ID
  --audience AUD              ID token audience (default https://iam.googleapis.com/PROVIDER, Google's default)
  --service-account EMAIL     impersonate this service account (roles/iam.workloadIdentityUser)
  --token-url URL             Google STS token endpoint (default https://sts.googleapis.com/v1/token;
                              another one for Private Service Connect)
  --token-info-url URL        Google STS introspection endpoint (default https://sts.googleapis.com/v1/introspect)
  --out FILE                  where to write it (default: a per-build file under $WORKSPACE_TMP)`,
  'gcp-credential': `Usage: jenkins-oidc-agent gcp-credential --audience AUD

Prints the executable-sourced credential answer (version 1) with a fresh ID token; Google's libraries
run it (see gcp-config). Its output holds the token.`,
  'azure-credentials': `Usage: jenkins-oidc-agent azure-credentials --client-id ID --tenant-id TENANT [options]

Writes an ID token for Microsoft Entra (audience api://AzureADTokenExchange) to a file (mode 0600)
and prints export lines for AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE: the
Azure SDKs (DefaultAzureCredential, WorkloadIdentityCredential) read them and re-read the file
whenever they need a token. With --refresh the file is kept fresh for as long as the build request
token lives. The Azure CLI signs in with it:
  az login --service-principal -u "$AZURE_CLIENT_ID" -t "$AZURE_TENANT_ID" --federated-token "$(cat "$AZURE_FEDERATED_TOKEN_FILE")"
  --client-id ID              the app registration's application (client) ID (a GUID)
  --tenant-id TENANT          the directory (tenant) ID, or a domain of the tenant
  --audience AUD              ID token audience; the federated credential's (default api://AzureADTokenExchange)
  --token-file FILE           where to write the token (default: a per-build file under $WORKSPACE_TMP)
  --refresh                   keep the token file fresh in the background until the request token stops
                              working, the file is removed, or the build step ends
  --refresh-interval S        seconds between refreshes (default: half the token's lifetime)
  --authority-host URL        Entra's host (default $AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com);
                              exported as AZURE_AUTHORITY_HOST when given
  --no-verify                 do not ask Entra for a token once now to check that a federated credential admits the build
  --json                      print the three (or four) variables as JSON
  --retry-max-attempts N      attempts when Entra or the token service does not answer, or answers 5xx/429 (default 5)
  --retry-base-delay-ms MS    first backoff ceiling (default 500)

When Entra refuses (AADSTS70021: no federated credential matches), the error gives Entra's words and
the token's iss, aud and sub: a federated credential must match issuer and subject exactly.`,
};
