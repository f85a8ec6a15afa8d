package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS

/**
 * What the with*Oidc steps share to run the jenkins-oidc agent on a build
 * agent: fetching it (its SHA-256 checked) into the block's private folder,
 * command lines quoted for sh and PowerShell, and the variables it prints
 * read back. Every member runs only steps of the script it is given, or does
 * string work, that the calling Jenkinsfile could do itself; the one
 * controller call is TokenService.agentSha256, public itself.
 */
final class AgentCommands {
  private AgentCommands() { }

  /**
   * Inside withJenkinsOidc, on a Linux or macOS agent with Node.js: fetches the
   * agent into the block's private folder (withJenkinsOidc deletes it, and all
   * in it, at the end) and returns that folder and the agent's path. `steps`
   * is the calling step's script (its isUnix, sh, writeFile, env); `needsNodeFor`
   * ends the message when Node.js is missing.
   */
  static Map<String, String> fetchOnUnix(Object steps, String step, Map oidcArgs, String needsNodeFor) {
    if (!steps.isUnix()) steps.error("${step}: needs a Linux or macOS agent".toString())
    if (steps.sh(returnStatus: true, script: 'command -v node >/dev/null 2>&1', label: 'jenkins-oidc: look for Node.js') != 0) {
      steps.error("${step}: needs Node.js 18+ on the PATH of the agent${needsNodeFor ?: ''}".toString())
    }
    String folder = folderOf(step, steps.env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String)
    String agent = "${folder}/jenkins-oidc-agent.mjs"
    String serviceUrl = (steps.env.JENKINS_ID_TOKEN_REQUEST_URL as String).replaceFirst(/\/id-token\?api-version=1$/, '')
    steps.writeFile(file: "${folder}/fetch-agent.cjs".toString(), text: steps.libraryResource('io/jenkinsoidc/fetch-agent.cjs'))
    steps.sh(script: shLine(['node', "${folder}/fetch-agent.cjs".toString(), "${serviceUrl}/agent/jenkins-oidc-agent.mjs".toString(), TokenService.agentSha256(oidcArgs), agent]),
             label: 'jenkins-oidc: fetch the agent')
    return [folder: folder, agent: agent]
  }

  /** The folder of the request token file, a Unix path (the steps that call this run on Unix agents only). */
  @NonCPS
  static String folderOf(String step, String requestTokenFile) {
    if (!requestTokenFile) throw new JenkinsOidcException("${step}: JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE is not set inside withJenkinsOidc")
    return requestTokenFile.substring(0, requestTokenFile.lastIndexOf('/'))
  }

  /** The same on any agent, whichever separator it uses (withAwsOidc runs on Windows agents too). */
  @NonCPS
  static String folderOfAnyAgent(String step, String requestTokenFile) {
    if (!requestTokenFile) throw new JenkinsOidcException("${step}: JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE is not set inside withJenkinsOidc")
    return requestTokenFile.substring(0, Math.max(requestTokenFile.lastIndexOf('/'), requestTokenFile.lastIndexOf('\\')))
  }

  /** One sh command line: each word single-quoted. */
  @NonCPS
  static String shLine(List<String> words) {
    List<String> quoted = []
    for (String w : words) quoted << ("'" + w.replace("'", "'\\''") + "'")
    return quoted.join(' ')
  }

  /** One PowerShell command line: each word single-quoted, run with the call operator. */
  @NonCPS
  static String powershellLine(List<String> words) {
    List<String> quoted = []
    for (String w : words) quoted << ("'" + w.replace("'", "''") + "'")
    return '& ' + quoted.join(' ')
  }

  /**
   * The `KEY=value` and `export KEY='value'` lines the agent prints, as a map;
   * refused unless it holds every name in `required` (or, with none required,
   * at least one variable).
   */
  @NonCPS
  static Map<String, String> variables(String step, String text, List<String> required) {
    Map<String, String> vars = [:]
    for (String line : (text ?: '').readLines()) {
      java.util.regex.Matcher m = line =~ /^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$/
      if (!m.matches()) continue
      String v = m.group(2)
      if (v.length() >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.substring(1, v.length() - 1).replace("'\\''", "'")
      vars[m.group(1)] = v
    }
    List<String> missing = []
    for (String name : (required ?: [])) if (!vars[name]) missing << name
    if (missing) throw new JenkinsOidcException("${step}: the jenkins-oidc agent did not print ${missing.join(', ')}")
    if (!vars) throw new JenkinsOidcException("${step}: the jenkins-oidc agent printed no variables")
    return vars
  }

  /** withEnv's NAME=value list. */
  @NonCPS
  static List<String> assignments(Map<String, String> vars) {
    List<String> out = []
    for (Map.Entry<String, String> e : vars.entrySet()) out << "${e.key}=${e.value}".toString()
    return out
  }
}
