import io.jenkinsoidc.AgentCommands
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.StepOptions

/**
 * withAzureOidc(clientId: '0b1c2d3e-...', tenantId: '72f988bf-...') { sh 'az login --service-principal -u "$AZURE_CLIENT_ID" -t "$AZURE_TENANT_ID" --federated-token "$(cat "$AZURE_FEDERATED_TOKEN_FILE")"' }
 *
 * Gives the block what the Azure SDKs (DefaultAzureCredential) and az login
 * read for Microsoft Entra workload identity federation: AZURE_CLIENT_ID,
 * AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, a 0600 file in the block's
 * private folder (beside the workspace root) holding the build's ID token for
 * api://AzureADTokenExchange, kept fresh in the background. The agent asks
 * Entra once before the block starts, so a missing federated credential fails
 * here with the token's iss, aud and sub. The token is never a step argument
 * or an environment variable (Pipeline stores step arguments, withEnv's
 * included, with the build). AZURE_CONFIG_DIR is a folder in the same private
 * folder, so az's token cache is the block's own. A client secret or
 * certificate from outside the block is cleared: the SDKs would prefer it.
 * When the block ends (also on failure or abort) the folder is deleted, which
 * also stops the refresher.
 * Options: clientId and tenantId (required), audience (default
 * api://AzureADTokenExchange), authorityHost (a sovereign cloud's Entra host),
 * plus the withJenkinsOidc options (serviceUrl, credentialsId). Needs Node.js
 * 18+ on a Linux or macOS agent.
 */
def call(Map stepArgs, Closure body) {
  Map args = StepOptions.snapshot('withAzureOidc', stepArgs, ['clientId', 'tenantId', 'audience', 'authorityHost', 'serviceUrl', 'credentialsId'])
  if (!args.clientId || !args.tenantId) error('withAzureOidc: clientId and tenantId are required, e.g. withAzureOidc(clientId: "<app registration client ID>", tenantId: "<directory ID>") { ... }')
  String audience = args.audience ?: 'api://AzureADTokenExchange'
  Map oidcArgs = [audience: [audience]] + args.subMap(['serviceUrl', 'credentialsId'])

  withJenkinsOidc(oidcArgs) {
    // The agent, in the request token's private folder (withJenkinsOidc deletes it, and all in it, at the end).
    Map<String, String> fetched = AgentCommands.fetchOnUnix(this, 'withAzureOidc', oidcArgs, '')
    String folder = fetched.folder
    String agent = fetched.agent
    String tokenFile = "${folder}/azure-federated-token"
    List<String> cmd = ['node', agent, 'azure-credentials', '--client-id', args.clientId as String, '--tenant-id', args.tenantId as String,
                        '--audience', audience, '--token-file', tokenFile, '--refresh']
    if (args.authorityHost) cmd += ['--authority-host', args.authorityHost as String]
    // The agent prints the variables (no token: that stays in the file).
    String out = sh(script: AgentCommands.shLine(cmd), returnStdout: true, label: "jenkins-oidc: Microsoft Entra sign-in check as app ${args.clientId}")
    Map<String, String> vars = AgentCommands.variables('withAzureOidc', out, ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID', 'AZURE_FEDERATED_TOKEN_FILE'])
    if (vars.AZURE_FEDERATED_TOKEN_FILE != tokenFile) throw new JenkinsOidcException('withAzureOidc: the agent wrote the token somewhere else than asked')
    vars.AZURE_CONFIG_DIR = "${folder}/azure-cli".toString()
    // EnvironmentCredential, first in DefaultAzureCredential, uses a secret or
    // certificate when one is set: cleared, so the block signs in as the build.
    for (String name : ['AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_CLIENT_CERTIFICATE_PASSWORD', 'AZURE_USERNAME', 'AZURE_PASSWORD']) vars[name] = ''
    withEnv(AgentCommands.assignments(vars)) {
      body()
    }
  }
}
