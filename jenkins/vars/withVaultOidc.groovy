import io.jenkinsoidc.AgentCommands
import io.jenkinsoidc.StepOptions

/**
 * withVaultOidc(vaultAddr: 'https://vault.example.com', role: 'app-deploy') { sh 'VAULT_TOKEN=$(cat "$JENKINS_OIDC_VAULT_TOKEN_FILE") vault kv get secret/app' }
 *
 * Logs the build in to Vault's JWT auth method with its ID token (audience
 * `vault` by default) and gives the block VAULT_ADDR and
 * JENKINS_OIDC_VAULT_TOKEN_FILE, a 0600 file in the block's private folder
 * holding the Vault token. The token is never a step argument or an
 * environment variable of the build (Pipeline stores step arguments, withEnv's
 * included, with the build): tools read the file. VAULT_TOKEN from outside
 * the block is cleared. When the block ends (also on failure or abort) the
 * token is revoked (revoke-self) and the folder deleted.
 * Options: vaultAddr and role (required), path (default jwt), audience
 * (default vault), namespace, plus the withJenkinsOidc options (serviceUrl,
 * credentialsId). Needs Node.js 18+ on a Linux or macOS agent.
 */
def call(Map stepArgs, Closure body) {
  Map args = StepOptions.snapshot('withVaultOidc', stepArgs, ['vaultAddr', 'role', 'path', 'audience', 'namespace', 'serviceUrl', 'credentialsId'])
  if (!args.vaultAddr || !args.role) error('withVaultOidc: vaultAddr and role are required, e.g. withVaultOidc(vaultAddr: "https://vault.example.com", role: "app-deploy") { ... }')
  String audience = args.audience ?: 'vault'
  Map oidcArgs = [audience: [audience]] + args.subMap(['serviceUrl', 'credentialsId'])

  withJenkinsOidc(oidcArgs) {
    // The agent, in the request token's private folder (withJenkinsOidc deletes it, and all in it, at the end).
    Map<String, String> fetched = AgentCommands.fetchOnUnix(this, 'withVaultOidc', oidcArgs, '')
    String folder = fetched.folder
    String agent = fetched.agent
    String tokenFile = "${folder}/vault-token"
    List<String> target = ['--vault-addr', args.vaultAddr as String]
    if (args.namespace) target += ['--namespace', args.namespace as String]
    List<String> login = ['node', agent, 'vault-login', '--role', args.role as String, '--path', (args.path ?: 'jwt') as String, '--audience', audience, '--out', tokenFile] + target
    sh(script: AgentCommands.shLine(login), label: "jenkins-oidc: Vault login as role ${args.role}")
    try {
      List<String> vars = ["VAULT_ADDR=${args.vaultAddr}".toString(), "JENKINS_OIDC_VAULT_TOKEN_FILE=${tokenFile}".toString(), 'VAULT_TOKEN=']
      if (args.namespace) vars << "VAULT_NAMESPACE=${args.namespace}".toString()
      withEnv(vars) {
        body()
      }
    } finally {
      // On its own: with the agent gone this sh throws, and must not replace the block's own error.
      try {
        sh(script: AgentCommands.shLine(['node', agent, 'vault-revoke', '--token-file', tokenFile] + target), label: 'jenkins-oidc: revoke the Vault token', returnStatus: true)
      } catch (Exception ignored) {
        // The token expires on its own (the role's token_ttl).
      }
    }
  }
}
