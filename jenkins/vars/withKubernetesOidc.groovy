import com.cloudbees.groovy.cps.NonCPS
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.StepOptions
import io.jenkinsoidc.TokenService

/**
 * withKubernetesOidc(server: 'https://k8s.example.com:6443', certificateAuthority: 'k8s/cluster-ca.pem') { sh 'kubectl apply -f k8s/' }
 *
 * Inside the block, kubectl (and client-go tools) authenticate to the cluster
 * as this build: KUBECONFIG names a kubeconfig whose user is the
 * jenkins-oidc agent as an exec credential plugin, which fetches a fresh ID
 * token (audience `kubernetes` by default) whenever kubectl needs one. The
 * kubeconfig holds no token; it lives in the block's private folder, which is
 * deleted when the block ends, and the request token is revoked then, so the
 * plugin stops working. Options: server (required, https), certificateAuthority
 * (a PEM file on the agent, embedded in the kubeconfig), audience, plus the
 * withJenkinsOidc options (serviceUrl, credentialsId). Needs Node.js 18+ on a
 * Linux or macOS agent. No token is ever a step argument.
 */
def call(Map stepArgs, Closure body) {
  Map args = StepOptions.snapshot('withKubernetesOidc', stepArgs, ['server', 'certificateAuthority', 'audience', 'serviceUrl', 'credentialsId'])
  if (!args.server) error('withKubernetesOidc: server is required, e.g. withKubernetesOidc(server: "https://k8s.example.com:6443") { ... }')
  if (!(args.server as String).startsWith('https://')) error("withKubernetesOidc: server must be https (the ID token is a bearer token), got '${(args.server as String).take(80)}'")
  String audience = args.audience ?: 'kubernetes'
  Map oidcArgs = [audience: [audience]] + args.subMap(['serviceUrl', 'credentialsId'])

  withJenkinsOidc(oidcArgs) {
    if (!isUnix()) error('withKubernetesOidc: needs a Linux or macOS agent')
    if (sh(returnStatus: true, script: 'command -v node >/dev/null 2>&1', label: 'jenkins-oidc: look for Node.js') != 0) {
      error('withKubernetesOidc: needs Node.js 18+ on the PATH of the agent (kubectl runs the jenkins-oidc agent for tokens)')
    }
    // The request token's private folder: withJenkinsOidc deletes it, and all in it, at the end.
    String folder = folderOf(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String)
    String agent = "${folder}/jenkins-oidc-agent.mjs"
    String serviceUrl = env.JENKINS_ID_TOKEN_REQUEST_URL.replaceFirst(/\/id-token\?api-version=1$/, '')
    writeFile(file: "${folder}/fetch-agent.cjs", text: libraryResource('io/jenkinsoidc/fetch-agent.cjs'))
    sh(script: quoteAll(['node', "${folder}/fetch-agent.cjs", "${serviceUrl}/agent/jenkins-oidc-agent.mjs", TokenService.agentSha256(oidcArgs), agent]), label: 'jenkins-oidc: fetch the agent')
    String kubeconfig = "${folder}/kubeconfig"
    List<String> cmd = ['node', agent, 'kubeconfig', '--server', args.server as String, '--audience', audience, '--out', kubeconfig]
    if (args.certificateAuthority) cmd += ['--certificate-authority', args.certificateAuthority as String]
    sh(script: quoteAll(cmd), label: "jenkins-oidc: kubeconfig for ${args.server}")
    withEnv(["KUBECONFIG=${kubeconfig}"]) {
      body()
    }
  }
}

/** The folder of the request token file (a Unix path: the step runs on Unix agents only). */
@NonCPS
private static String folderOf(String path) {
  if (!path) throw new JenkinsOidcException('withKubernetesOidc: JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE is not set inside withJenkinsOidc')
  return path.substring(0, path.lastIndexOf('/'))
}

/** One sh command line: each word single-quoted. */
@NonCPS
private static String quoteAll(List<String> words) {
  List<String> quoted = []
  for (String w : words) quoted << ("'" + w.replace("'", "'\\''") + "'")
  return quoted.join(' ')
}
