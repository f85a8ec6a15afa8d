import com.cloudbees.groovy.cps.NonCPS
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.StepOptions
import io.jenkinsoidc.TokenService

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
    if (!isUnix()) error('withAzureOidc: needs a Linux or macOS agent')
    if (sh(returnStatus: true, script: 'command -v node >/dev/null 2>&1', label: 'jenkins-oidc: look for Node.js') != 0) {
      error('withAzureOidc: needs Node.js 18+ on the PATH of the agent')
    }
    // The request token's private folder: withJenkinsOidc deletes it, and all in it, at the end.
    String folder = folderOf(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String)
    String agent = "${folder}/jenkins-oidc-agent.mjs"
    String serviceUrl = env.JENKINS_ID_TOKEN_REQUEST_URL.replaceFirst(/\/id-token\?api-version=1$/, '')
    writeFile(file: "${folder}/fetch-agent.cjs", text: libraryResource('io/jenkinsoidc/fetch-agent.cjs'))
    sh(script: quoteAll(['node', "${folder}/fetch-agent.cjs", "${serviceUrl}/agent/jenkins-oidc-agent.mjs", TokenService.agentSha256(oidcArgs), agent]), label: 'jenkins-oidc: fetch the agent')
    String tokenFile = "${folder}/azure-federated-token"
    List<String> cmd = ['node', agent, 'azure-credentials', '--client-id', args.clientId as String, '--tenant-id', args.tenantId as String,
                        '--audience', audience, '--token-file', tokenFile, '--refresh']
    if (args.authorityHost) cmd += ['--authority-host', args.authorityHost as String]
    // The agent prints the variables (no token: that stays in the file).
    String out = sh(script: quoteAll(cmd), returnStdout: true, label: "jenkins-oidc: Microsoft Entra sign-in check as app ${args.clientId}")
    Map<String, String> vars = parseVariables(out)
    if (vars.AZURE_FEDERATED_TOKEN_FILE != tokenFile) throw new JenkinsOidcException('withAzureOidc: the agent wrote the token somewhere else than asked')
    vars.AZURE_CONFIG_DIR = "${folder}/azure-cli".toString()
    // EnvironmentCredential, first in DefaultAzureCredential, uses a secret or
    // certificate when one is set: cleared, so the block signs in as the build.
    for (String name : ['AZURE_CLIENT_SECRET', 'AZURE_CLIENT_CERTIFICATE_PATH', 'AZURE_CLIENT_CERTIFICATE_PASSWORD', 'AZURE_USERNAME', 'AZURE_PASSWORD']) vars[name] = ''
    withEnv(assignments(vars)) {
      body()
    }
  }
}

/** The folder of the request token file (a Unix path: the step runs on Unix agents only). */
@NonCPS
private static String folderOf(String path) {
  if (!path) throw new JenkinsOidcException('withAzureOidc: JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE is not set inside withJenkinsOidc')
  return path.substring(0, path.lastIndexOf('/'))
}

/** One sh command line: each word single-quoted. */
@NonCPS
private static String quoteAll(List<String> words) {
  List<String> quoted = []
  for (String w : words) quoted << ("'" + w.replace("'", "'\\''") + "'")
  return quoted.join(' ')
}

@NonCPS
private static List<String> assignments(Map<String, String> vars) {
  List<String> out = []
  for (Map.Entry<String, String> e : vars.entrySet()) out << "${e.key}=${e.value}".toString()
  return out
}

/** `export KEY='value'` lines, as the agent prints them. */
@NonCPS
private static Map<String, String> parseVariables(String text) {
  Map<String, String> vars = [:]
  for (String line : (text ?: '').readLines()) {
    java.util.regex.Matcher m = line =~ /^export ([A-Z_][A-Z0-9_]*)=(.*)$/
    if (!m.matches()) continue
    String v = m.group(2)
    if (v.length() >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.substring(1, v.length() - 1).replace("'\\''", "'")
    vars[m.group(1)] = v
  }
  if (!vars.AZURE_CLIENT_ID || !vars.AZURE_TENANT_ID || !vars.AZURE_FEDERATED_TOKEN_FILE) throw new JenkinsOidcException('withAzureOidc: the jenkins-oidc agent did not print the Azure variables')
  return vars
}
