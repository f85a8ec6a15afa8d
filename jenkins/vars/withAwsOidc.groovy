import com.cloudbees.groovy.cps.NonCPS
import io.jenkinsoidc.Controller
import io.jenkinsoidc.Masking
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.Settings

/**
 * withAwsOidc(roleArn: 'arn:aws:iam::123456789012:role/deploy', region: 'eu-west-1') { sh 'aws s3 ls' }
 *
 * Inside the block, the AWS CLI and SDKs run as the role. Options:
 *   roleArn (required), region, sessionName, durationSeconds, audience
 *   (default sts.amazonaws.com), mode:
 *     'web-identity' (default): AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE; the
 *        SDKs assume the role themselves and re-read the token file, which is
 *        kept fresh in the background, so blocks may outlast the ID token.
 *        Works with plain curl on agents without Node.js.
 *     'credentials': AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN from one
 *        AssumeRoleWithWebIdentity call (valid durationSeconds; needs Node.js).
 *   useNode: false to use the curl path even where Node.js exists (an old Node).
 *   stsEndpoint (an STS endpoint other than the region's), plus the
 *   withJenkinsOidc options (ttl, serviceUrl, credentialsId).
 * Blocks nest and follow each other: each has its own token, file and role.
 */
def call(Map args, Closure body) {
  if (!args?.roleArn) error('withAwsOidc: roleArn is required, e.g. withAwsOidc(roleArn: "arn:aws:iam::123456789012:role/deploy") { ... }')
  String mode = args.mode ?: 'web-identity'
  if (!(mode in ['web-identity', 'credentials'])) error("withAwsOidc: mode must be 'web-identity' or 'credentials', got '${mode}'")
  String audience = args.audience ?: 'sts.amazonaws.com'
  Map oidcArgs = [audience: [audience]] + args.subMap(['ttl', 'serviceUrl', 'credentialsId'])

  withJenkinsOidc(oidcArgs) {
    String folder = "${pwd(tmp: true)}/jenkins-oidc-aws-${UUID.randomUUID().toString().take(8)}"
    boolean unix = isUnix()
    boolean node = args.useNode == false ? false : unix ? sh(returnStatus: true, script: 'command -v node >/dev/null 2>&1', label: 'jenkins-oidc: look for Node.js') == 0
                        : bat(returnStatus: true, script: '@where node >nul 2>nul', label: 'jenkins-oidc: look for Node.js') == 0
    Map<String, String> vars
    try {
      if (node) {
        vars = viaAgent(args, mode, audience, folder, unix)
      } else if (mode == 'web-identity' && unix) {
        vars = viaCurl(args, audience, folder)
      } else {
        error("withAwsOidc: mode '${mode}' on this agent needs Node.js 18+ on the PATH${unix ? '' : ' (Windows agents always do)'}; mode 'web-identity' works with curl alone on Linux and macOS agents")
      }
      // AWS SDKs and the CLI prefer static keys in the environment to a web
      // identity token file: an outer credentials-mode block would otherwise
      // win inside an inner web-identity block. Each block clears the other
      // mode's variables (empty counts as unset for the SDKs and the CLI).
      List<String> other = mode == 'web-identity' ? ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION']
                                                  : ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_SESSION_NAME']
      other.each { if (!vars.containsKey(it)) vars[it] = '' }
      List<String> secrets = ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_ACCESS_KEY_ID'].findAll { vars[it] }.collect { vars[it] }
      Closure inner = {
        withEnv(vars.collect { k, v -> "${k}=${v}" as String }) {
          body()
        }
      }
      if (Masking.available()) {
        wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: secrets.collect { [password: it] }]) { inner() }
      } else {
        if (secrets) echo 'jenkins-oidc: the Mask Passwords plugin is not installed, so AWS credentials are not masked in this log'
        inner()
      }
    } finally {
      // Removing the folder also stops the token refresher (it watches its file).
      if (unix) {
        sh(script: "[ -f '${folder}/refresher.pid' ] && kill \$(cat '${folder}/refresher.pid') 2>/dev/null; rm -rf '${folder}'", label: 'jenkins-oidc: clean up', returnStatus: true)
      } else {
        dir(folder) { deleteDir() }
      }
    }
  }
}

/** Runs the jenkins-oidc agent (fetched from the service, SHA-256 checked) on the build agent. */
private Map<String, String> viaAgent(Map args, String mode, String audience, String folder, boolean unix) {
  Settings settings = Settings.resolve(args, Settings.parseProperties(libraryResource('io/jenkinsoidc/defaults.properties')))
  String agent = "${folder}/jenkins-oidc-agent.mjs"
  writeFile(file: "${folder}/fetch-agent.cjs", text: libraryResource('io/jenkinsoidc/fetch-agent.cjs'))
  List<String> fetch = ['node', "${folder}/fetch-agent.cjs", "${settings.serviceUrl}/agent/jenkins-oidc-agent.mjs", Controller.agentSha256(settings), agent]
  List<String> cmd = ['node', agent, 'assume-role', '--role-arn', args.roleArn as String, '--audience', audience]
  if (args.region) cmd += ['--region', args.region as String]
  if (args.sessionName) cmd += ['--session-name', args.sessionName as String]
  if (args.durationSeconds) cmd += ['--duration-seconds', args.durationSeconds as String]
  if (args.stsEndpoint) cmd += ['--sts-endpoint', args.stsEndpoint as String]
  cmd += mode == 'web-identity' ? ['--format', 'web-identity', '--refresh', '--token-file', "${folder}/web-identity-token"] : ['--format', 'dotenv']
  String out
  if (unix) {
    sh(script: quoteAll(fetch), label: 'jenkins-oidc: fetch the agent')
    out = sh(script: quoteAll(cmd), returnStdout: true, label: "jenkins-oidc: assume ${args.roleArn}")
  } else {
    powershell(script: psAll(fetch), label: 'jenkins-oidc: fetch the agent')
    out = powershell(script: psAll(cmd), returnStdout: true, label: "jenkins-oidc: assume ${args.roleArn}")
  }
  return parseVariables(out)
}

/** Agents without Node.js: curl keeps the web identity token file fresh. */
private Map<String, String> viaCurl(Map args, String audience, String folder) {
  String file = "${folder}/web-identity-token"
  writeFile(file: "${folder}/refresh-token.sh", text: libraryResource('io/jenkinsoidc/refresh-token.sh'))
  sh(script: "chmod 700 '${folder}' && sh '${folder}/refresh-token.sh' '${file}' '${audience}' ${args.refreshInterval ?: 120}", label: 'jenkins-oidc: get a web identity token')
  Map<String, String> vars = [AWS_ROLE_ARN: args.roleArn as String, AWS_WEB_IDENTITY_TOKEN_FILE: file,
                              AWS_ROLE_SESSION_NAME: (args.sessionName ?: "jenkins-${currentBuild.number}") as String]
  if (args.region) vars += [AWS_REGION: args.region as String, AWS_DEFAULT_REGION: args.region as String]
  if (args.stsEndpoint) vars.AWS_ENDPOINT_URL_STS = args.stsEndpoint as String
  return vars
}

@NonCPS
private static String quoteAll(List<String> words) {
  return words.collect { "'" + it.replace("'", "'\\''") + "'" }.join(' ')
}

@NonCPS
private static String psAll(List<String> words) {
  return '& ' + words.collect { "'" + it.replace("'", "''") + "'" }.join(' ')
}

/** KEY=value and `export KEY='value'` lines, as the agent prints them. */
@NonCPS
static Map<String, String> parseVariables(String text) {
  Map<String, String> vars = [:]
  text.readLines().each { line ->
    def m = line =~ /^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$/
    if (!m.matches()) return
    String v = m.group(2)
    if (v.length() >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.substring(1, v.length() - 1).replace("'\\''", "'")
    vars[m.group(1)] = v
  }
  if (!vars) throw new JenkinsOidcException('the jenkins-oidc agent printed no variables')
  return vars
}
