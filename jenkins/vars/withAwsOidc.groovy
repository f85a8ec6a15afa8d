import com.cloudbees.groovy.cps.NonCPS
import io.jenkinsoidc.AgentCommands
import io.jenkinsoidc.StepOptions
import io.jenkinsoidc.TokenService

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
 *     'credentials': one AssumeRoleWithWebIdentity call (valid durationSeconds;
 *        needs Node.js); the keys go straight from the agent into a private
 *        shared-credentials file: AWS_SHARED_CREDENTIALS_FILE + AWS_PROFILE=jenkins-oidc.
 *   chainRoleArns: further roles (a String or a List), each assumed with the
 *     previous role's session (role chaining, at most 1 hour each as AWS caps
 *     it); the block runs as the last one. Needs mode 'credentials'.
 *   useNode: false to use the curl path even where Node.js exists (an old Node).
 *   refreshInterval (curl path, seconds), stsEndpoint (an STS endpoint other
 *   than the region's), plus the withJenkinsOidc options (serviceUrl, credentialsId).
 * Options are read once (StepOptions.snapshot); the block lasts at most the
 * request token's lifetime, the administrator's JENKINS_OIDC_REQUEST_TOKEN_TTL.
 * No token or key is ever a step argument; every file lives in the block's
 * private folder and is deleted when the block ends, also on failure or abort.
 * Blocks nest and follow each other: each has its own token, files and role.
 */
def call(Map stepArgs, Closure body) {
  Map args = StepOptions.snapshot('withAwsOidc', stepArgs, ['roleArn', 'region', 'sessionName', 'durationSeconds', 'audience', 'mode', 'useNode', 'refreshInterval',
                                                            'stsEndpoint', 'serviceUrl', 'credentialsId', 'chainRoleArns'], ['chainRoleArns'])
  if (!args.roleArn) error('withAwsOidc: roleArn is required, e.g. withAwsOidc(roleArn: "arn:aws:iam::123456789012:role/deploy") { ... }')
  String mode = args.mode ?: 'web-identity'
  if (!(mode in ['web-identity', 'credentials'])) error("withAwsOidc: mode must be 'web-identity' or 'credentials', got '${mode}'")
  if (args.chainRoleArns && mode != 'credentials') {
    error("withAwsOidc: chainRoleArns needs mode: 'credentials' (the SDKs assume only the first role from a web identity token file)")
  }
  String audience = args.audience ?: 'sts.amazonaws.com'
  Map oidcArgs = [audience: [audience]] + args.subMap(['serviceUrl', 'credentialsId'])

  withJenkinsOidc(oidcArgs) {
    // The request token's private folder: withJenkinsOidc deletes it, and all in it, at the end.
    String folder = AgentCommands.folderOfAnyAgent('withAwsOidc', env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String)
    boolean unix = isUnix()
    boolean node = args.useNode == 'false' ? false : unix ? sh(returnStatus: true, script: 'command -v node >/dev/null 2>&1', label: 'jenkins-oidc: look for Node.js') == 0
                        : bat(returnStatus: true, script: '@where node >nul 2>nul', label: 'jenkins-oidc: look for Node.js') == 0
    try {
      Map<String, String> vars
      if (node) {
        vars = viaAgent(args, mode, audience, folder, unix, oidcArgs)
      } else if (mode == 'web-identity' && unix) {
        vars = viaCurl(args, audience, folder)
      } else {
        error("withAwsOidc: mode '${mode}' on this agent needs Node.js 18+ on the PATH${unix ? '' : ' (Windows agents always do)'}; mode 'web-identity' works with curl alone on Linux and macOS agents")
      }
      // AWS SDKs and the CLI prefer static keys in the environment, and a
      // named profile, to a web identity token file: an outer block would
      // otherwise win inside this block. Each block clears what the other
      // mode sets (withEnv removes a variable given an empty value). That
      // clears the build's environment only: a process the block starts also
      // inherits the agent process's own environment (Launcher.inherit), so a
      // key the agent itself has (or IRSA's AWS_ROLE_ARN in its pod) comes
      // back. The block checks, in a shell it starts, that none is there.
      List<String> other = mode == 'web-identity' ? ['AWS_PROFILE', 'AWS_SHARED_CREDENTIALS_FILE']
                                                  : ['AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_SESSION_NAME']
      List<String> cleared = []
      for (String name : other + ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION']) {
        if (!vars.containsKey(name)) { vars[name] = ''; cleared << name }
      }
      withEnv(AgentCommands.assignments(vars)) {
        String ambient = unix ? sh(returnStdout: true, script: ambientCheck(cleared), label: 'jenkins-oidc: no ambient AWS credentials')
                              : powershell(returnStdout: true, script: psAmbientCheck(cleared), label: 'jenkins-oidc: no ambient AWS credentials')
        if (ambient.trim()) {
          error("withAwsOidc: the agent's own environment sets ${ambient.trim().split(/\s+/).join(', ')}, which AWS SDKs and the CLI would use instead of the role; " +
                "Jenkins cannot unset a variable the agent process itself has (withEnv only hides it from env). Remove them from the agent's " +
                "environment (its service or pod definition), or run this block on an agent without AWS credentials of its own")
        }
        body()
      }
    } finally {
      // The curl refresher stops when its folder goes; stop it now rather than at its next wake-up.
      // On its own: with the agent gone this sh throws, and must not replace the block's own error.
      if (unix && !node) {
        try {
          sh(script: "[ -f '${folder}/refresher.pid' ] && kill \$(cat '${folder}/refresher.pid') 2>/dev/null; true", label: 'jenkins-oidc: stop the token refresher', returnStatus: true)
        } catch (Exception ignored) {
          // The refresher stops by itself once its folder is gone.
        }
      }
    }
  }
}

/** Runs the jenkins-oidc agent (fetched from the service, SHA-256 checked) on the build agent. */
private Map<String, String> viaAgent(Map args, String mode, String audience, String folder, boolean unix, Map oidcArgs) {
  String sep = unix ? '/' : '\\'
  String agent = "${folder}${sep}jenkins-oidc-agent.mjs"
  String serviceUrl = env.JENKINS_ID_TOKEN_REQUEST_URL.replaceFirst(/\/id-token\?api-version=1$/, '')
  writeFile(file: "${folder}${sep}fetch-agent.cjs", text: libraryResource('io/jenkinsoidc/fetch-agent.cjs'))
  List<String> fetch = ['node', "${folder}${sep}fetch-agent.cjs", "${serviceUrl}/agent/jenkins-oidc-agent.mjs", TokenService.agentSha256(oidcArgs), agent]
  List<String> cmd = ['node', agent, 'assume-role', '--role-arn', args.roleArn as String, '--audience', audience]
  if (args.region) cmd += ['--region', args.region as String]
  if (args.sessionName) cmd += ['--session-name', args.sessionName as String]
  if (args.durationSeconds) cmd += ['--duration-seconds', args.durationSeconds as String]
  if (args.stsEndpoint) cmd += ['--sts-endpoint', args.stsEndpoint as String]
  for (String arn : (StepOptions.texts(args, 'chainRoleArns') ?: [])) cmd += ['--chain-role-arn', arn]
  String credentials = "${folder}${sep}aws-credentials"
  cmd += mode == 'web-identity' ? ['--format', 'web-identity', '--refresh', '--token-file', "${folder}${sep}web-identity-token"]
                                : ['--format', 'shared-credentials', '--out', credentials]
  String out
  if (unix) {
    sh(script: AgentCommands.shLine(fetch), label: 'jenkins-oidc: fetch the agent')
    out = sh(script: AgentCommands.shLine(cmd), returnStdout: true, label: "jenkins-oidc: assume ${args.roleArn}")
  } else {
    powershell(script: AgentCommands.powershellLine(fetch), label: 'jenkins-oidc: fetch the agent')
    out = powershell(script: AgentCommands.powershellLine(cmd), returnStdout: true, label: "jenkins-oidc: assume ${args.roleArn}")
  }
  if (mode == 'web-identity') return AgentCommands.variables('withAwsOidc', out, [])
  Map<String, String> vars = [AWS_SHARED_CREDENTIALS_FILE: credentials, AWS_PROFILE: 'jenkins-oidc']
  if (args.region) vars += [AWS_REGION: args.region as String, AWS_DEFAULT_REGION: args.region as String]
  return vars
}

/** Agents without Node.js: curl keeps the web identity token file fresh. */
private Map<String, String> viaCurl(Map args, String audience, String folder) {
  String file = "${folder}/web-identity-token"
  writeFile(file: "${folder}/refresh-token.sh", text: libraryResource('io/jenkinsoidc/refresh-token.sh'))
  sh(script: AgentCommands.shLine(['sh', "${folder}/refresh-token.sh", file, audience, (args.refreshInterval ?: 120) as String]), label: 'jenkins-oidc: get a web identity token')
  Map<String, String> vars = [AWS_ROLE_ARN: args.roleArn as String, AWS_WEB_IDENTITY_TOKEN_FILE: file,
                              AWS_ROLE_SESSION_NAME: (args.sessionName ?: "jenkins-${currentBuild.number}") as String]
  if (args.region) vars += [AWS_REGION: args.region as String, AWS_DEFAULT_REGION: args.region as String]
  if (args.stsEndpoint) vars.AWS_ENDPOINT_URL_STS = args.stsEndpoint as String
  return vars
}

/** A shell line that prints which of these (fixed, upper-case) variable names are set in its own environment. */
@NonCPS
private static String ambientCheck(List<String> names) {
  return "for v in ${names.join(' ')}; do [ -n \"\$(printenv \"\$v\")\" ] && printf '%s ' \"\$v\"; done; true"
}

/** The same in PowerShell. */
@NonCPS
private static String psAmbientCheck(List<String> names) {
  List<String> quoted = []
  for (String name : names) quoted << "'${name}'".toString()
  return "foreach (\$v in @(${quoted.join(', ')})) { if ([Environment]::GetEnvironmentVariable(\$v)) { Write-Output \$v } }"
}
