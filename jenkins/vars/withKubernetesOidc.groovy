import io.jenkinsoidc.AgentCommands
import io.jenkinsoidc.StepOptions

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
    // The agent, in the request token's private folder (withJenkinsOidc deletes it, and all in it, at the end).
    Map<String, String> fetched = AgentCommands.fetchOnUnix(this, 'withKubernetesOidc', oidcArgs, ' (kubectl runs the jenkins-oidc agent for tokens)')
    String folder = fetched.folder
    String agent = fetched.agent
    String kubeconfig = "${folder}/kubeconfig"
    List<String> cmd = ['node', agent, 'kubeconfig', '--server', args.server as String, '--audience', audience, '--out', kubeconfig]
    if (args.certificateAuthority) cmd += ['--certificate-authority', args.certificateAuthority as String]
    sh(script: AgentCommands.shLine(cmd), label: "jenkins-oidc: kubeconfig for ${args.server}")
    withEnv(["KUBECONFIG=${kubeconfig}"]) {
      body()
    }
  }
}
