import io.jenkinsoidc.AgentCommands
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.StepOptions

/**
 * withGcpOidc(provider: 'projects/123456789012/locations/global/workloadIdentityPools/jenkins/providers/ci-main') { sh 'gcloud storage ls gs://acme-artifacts' }
 *
 * Gives the block Google's external_account credentials: GOOGLE_APPLICATION_CREDENTIALS
 * (and gcloud's CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE) name a 0600 file in
 * the block's private folder (beside the workspace root) whose credential
 * source is the jenkins-oidc agent as an executable, so gcloud and Google's
 * client libraries exchange a fresh ID token at Google's STS whenever they
 * need one (GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1 lets them run it). The
 * file holds no secret, and no token is ever a step argument or an
 * environment variable (Pipeline stores step arguments, withEnv's included,
 * with the build). CLOUDSDK_CONFIG is a folder in the same private folder, so
 * gcloud's own state is the block's. An access token or key file named from
 * outside the block is cleared: gcloud and the libraries would prefer it.
 * When the block ends (also on failure or abort) the folder is deleted: the
 * credential file and the agent it runs are gone, and the request token the
 * agent used is revoked by withJenkinsOidc.
 * Options: provider (required; the workload identity provider's resource
 * name), serviceAccount (impersonate it), audience (default Google's:
 * https://iam.googleapis.com/<provider>), tokenUrl and tokenInfoUrl (Private
 * Service Connect), plus the withJenkinsOidc options (serviceUrl,
 * credentialsId). Needs Node.js 18+ on a Linux or macOS agent.
 */
def call(Map stepArgs, Closure body) {
  Map args = StepOptions.snapshot('withGcpOidc', stepArgs, ['provider', 'serviceAccount', 'audience', 'tokenUrl', 'tokenInfoUrl', 'serviceUrl', 'credentialsId'])
  if (!args.provider) error('withGcpOidc: provider is required, e.g. withGcpOidc(provider: "projects/123456789012/locations/global/workloadIdentityPools/jenkins/providers/ci-main") { ... }')
  String provider = (args.provider as String).replaceFirst(/^(https:)?\/\/iam\.googleapis\.com\//, '')
  String audience = args.audience ?: "https://iam.googleapis.com/${provider}".toString()
  Map oidcArgs = [audience: [audience]] + args.subMap(['serviceUrl', 'credentialsId'])

  withJenkinsOidc(oidcArgs) {
    // The agent, in the request token's private folder (withJenkinsOidc deletes it, and all in it, at the end).
    Map<String, String> fetched = AgentCommands.fetchOnUnix(this, 'withGcpOidc', oidcArgs, '')
    String folder = fetched.folder
    String agent = fetched.agent
    String file = "${folder}/gcp-credentials.json"
    List<String> cmd = ['node', agent, 'gcp-config', '--provider', provider, '--audience', audience, '--out', file]
    if (args.serviceAccount) cmd += ['--service-account', args.serviceAccount as String]
    if (args.tokenUrl) cmd += ['--token-url', args.tokenUrl as String]
    if (args.tokenInfoUrl) cmd += ['--token-info-url', args.tokenInfoUrl as String]
    Map<String, String> vars = AgentCommands.variables('withGcpOidc', sh(script: AgentCommands.shLine(cmd), returnStdout: true, label: 'jenkins-oidc: Google external_account credentials'), ['GOOGLE_APPLICATION_CREDENTIALS'])
    if (vars.GOOGLE_APPLICATION_CREDENTIALS != file) throw new JenkinsOidcException('withGcpOidc: the agent wrote the credential file somewhere else than asked')
    vars.CLOUDSDK_CONFIG = "${folder}/gcloud".toString()
    // gcloud uses an access token (file) before any credential file, and
    // Terraform's google provider GOOGLE_OAUTH_ACCESS_TOKEN and
    // GOOGLE_CREDENTIALS: cleared, so the block acts as the build.
    for (String name : ['CLOUDSDK_AUTH_ACCESS_TOKEN_FILE', 'CLOUDSDK_AUTH_ACCESS_TOKEN', 'GOOGLE_OAUTH_ACCESS_TOKEN', 'GOOGLE_CREDENTIALS']) vars[name] = ''
    withEnv(AgentCommands.assignments(vars)) {
      body()
    }
  }
}
