// The library's tests, run by test/jenkins/library.test.ts (jest), which starts
// the real token service and passes its URL and a registered client here:
//   groovy -cp jenkins/src:jenkins/test/stubs:jenkins/test jenkins/test/LibraryTest.groovy
// Prints one line per test and "N passed, M failed"; exits 1 on any failure.
import com.cloudbees.plugins.credentials.CredentialsProvider
import com.cloudbees.plugins.credentials.CredentialsScope
import com.cloudbees.plugins.credentials.impl.UsernamePasswordCredentialsImpl
import groovy.json.JsonSlurper
import groovy.transform.Field
import hudson.model.Cause
import hudson.slaves.EnvironmentVariablesNodeProperty
import jenkins.model.Jenkins
import jenkins.scm.api.SCMHead
import jenkins.scm.api.SCMRevisionAction
import jenkins.scm.api.SCMSource
import jenkins.scm.api.mixin.ChangeRequestSCMHead
import jenkins.scm.api.mixin.TagSCMHead
import org.jenkinsci.plugins.workflow.cps.replay.ReplayCause
import org.jenkinsci.plugins.workflow.libs.GlobalLibraries
import org.jenkinsci.plugins.workflow.libs.LibrariesAction
import org.jenkinsci.plugins.workflow.libs.LibraryConfiguration
import org.jenkinsci.plugins.workflow.libs.LibraryRecord
import org.jenkinsci.plugins.pipeline.modeldefinition.causes.RestartDeclarativePipelineCause
import hudson.FilePath
import io.jenkinsoidc.BuildFacts
import io.jenkinsoidc.ControllerSettings
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.LibraryPin
import io.jenkinsoidc.RequestTokenFile
import io.jenkinsoidc.StepOptions
import io.jenkinsoidc.TokenService

/** The service as controllers reach it: https, through the lab's TLS proxy (the JVM trusts the lab's CA). */
@Field String serviceUrl = System.getenv('JENKINS_OIDC_TEST_URL')
@Field String clientId = System.getenv('JENKINS_OIDC_TEST_CLIENT_ID')
@Field String clientSecret = System.getenv('JENKINS_OIDC_TEST_CLIENT_SECRET')
@Field String jenkinsUrl = System.getenv('JENKINS_OIDC_TEST_JENKINS_URL')
@Field File root = new File(System.getenv('JENKINS_OIDC_TEST_LIBRARY') ?: 'jenkins')
@Field String issuer = System.getenv('JENKINS_OIDC_TEST_ISSUER')
@Field String probe = System.getenv('JENKINS_OIDC_TEST_PROBE')
/** What a build agent has: trust in the test CA, the STS endpoint (the stand-in). */
@Field Map<String, String> awsAgentEnv = [NODE_EXTRA_CA_CERTS: System.getenv('JENKINS_OIDC_TEST_CA'), AWS_ENDPOINT_URL_STS: System.getenv('JENKINS_OIDC_TEST_STS')]
@Field String deployRole = System.getenv('JENKINS_OIDC_TEST_ROLE_DEPLOY')
@Field String auditRole = System.getenv('JENKINS_OIDC_TEST_ROLE_AUDIT')
@Field String otherRole = System.getenv('JENKINS_OIDC_TEST_ROLE_OTHER')
@Field String chainedRole = System.getenv('JENKINS_OIDC_TEST_ROLE_CHAINED')
@Field String kubeServer = System.getenv('JENKINS_OIDC_TEST_KUBE_SERVER')
@Field String vaultUrl = System.getenv('JENKINS_OIDC_TEST_VAULT_URL')
/** The Entra stand-in's host (the agent's --authority-host) and the app azure setup configured it with. */
@Field String entraHost = System.getenv('JENKINS_OIDC_TEST_ENTRA_HOST')
@Field String azureClientId = System.getenv('JENKINS_OIDC_TEST_AZURE_CLIENT_ID')
@Field String azureTenantId = System.getenv('JENKINS_OIDC_TEST_AZURE_TENANT_ID')
/** The Google STS stand-in, the provider gcp setup configured it with, and whether gcloud is here to use them. */
@Field String gcpSts = System.getenv('JENKINS_OIDC_TEST_GCP_STS')
@Field String gcpProvider = System.getenv('JENKINS_OIDC_TEST_GCP_PROVIDER')
@Field boolean gcloud = System.getenv('JENKINS_OIDC_TEST_GCLOUD') == '1'
assert serviceUrl && clientId && clientSecret && jenkinsUrl

class GitSource extends SCMSource { String remote }
/** github-branch-source's GitHubSCMSource (the stand-in), by a name the tests can use. */
class GitHubSCMSourceAlias extends org.jenkinsci.plugins.github_branch_source.GitHubSCMSource {
  GitHubSCMSourceAlias(String owner, String repo) { super(owner, repo) }
}
class GitRevision { String hash }
class PullRequestHead extends SCMHead implements ChangeRequestSCMHead {
  final String id
  PullRequestHead(String id) { super("PR-${id}"); this.id = id }
}
class GitTagHead extends SCMHead implements TagSCMHead {
  GitTagHead(String name) { super(name) }
  long getTimestamp() { 0L }
}

Map claimsOf(String jwt) {
  new JsonSlurper().parseText(new String(Base64.urlDecoder.decode(jwt.split('\\.')[1]), 'UTF-8')) as Map
}

Map httpPost(String url, Map<String, String> form) {
  HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection()
  c.requestMethod = 'POST'; c.doOutput = true
  c.setRequestProperty('Content-Type', 'application/x-www-form-urlencoded')
  c.outputStream.withStream { it.write(form.collect { k, v -> "${URLEncoder.encode(k, 'UTF-8')}=${URLEncoder.encode(v, 'UTF-8')}" }.join('&').getBytes('UTF-8')) }
  int status = c.responseCode
  String text = (status < 400 ? c.inputStream : c.errorStream).getText('UTF-8')
  [status: status, body: text ? new JsonSlurper().parseText(text) : null]
}

Map exchange(String url, String requestToken) {
  httpPost("${url}/token", [grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: 'jenkins-build',
                            subject_token: requestToken, subject_token_type: 'urn:jenkins-oidc:token-type:build-request-token'])
}

/** The library as docs/jenkins.md configures it: global, trusted, pinned to a tag, no version override. */
LibraryConfiguration pinnedLibrary(Map overrides = [:]) {
  LibraryConfiguration lib = new LibraryConfiguration('jenkins-oidc')
  lib.defaultVersion = 'v1.0.0'
  lib.allowVersionOverride = false
  overrides.each { k, v -> lib."${k}" = v }
  return lib
}

/** What LibraryAdder records when a build loads the library (as `name` at `version`). */
LibraryRecord loadedLibrary(String version = 'v1.0.0', boolean trusted = true, String name = 'jenkins-oidc') {
  new LibraryRecord(name, version, trusted, ['jenkinsOidcToken', 'withAwsOidc', 'withAzureOidc', 'withGcpOidc', 'withJenkinsOidc', 'withKubernetesOidc', 'withVaultOidc'] as Set)
}

/** A controller as configured by the admin guide, and one build of one job. */
Harness controller(Map opts = [:]) {
  GlobalLibraries.get().libraries.clear()
  GlobalLibraries.get().libraries.addAll(opts.libraries ?: [pinnedLibrary()])
  Jenkins.get().globalNodeProperties.clear()
  Jenkins.get().globalNodeProperties << new EnvironmentVariablesNodeProperty(envVars: (opts.containsKey('props') ? opts.props : [JENKINS_OIDC_URL: serviceUrl]) as Map)
  CredentialsProvider.stored.clear()
  CredentialsProvider.stored << (opts.credential ?: new UsernamePasswordCredentialsImpl(CredentialsScope.SYSTEM, 'jenkins-oidc-client', 'jenkins-oidc', clientId, clientSecret))
  CredentialsProvider.stored.addAll((opts.extraCredentials ?: []) as List)
  SCMHead.HeadByItem.heads.clear(); SCMSource.SourceByItem.sources.clear()
  FakeJob job = new FakeJob(fullName: opts.job ?: 'team/app/main')
  int number = opts.number ?: 42
  FakeRun run = new FakeRun(parent: job, number: number, absoluteUrl: "${jenkinsUrl}/job/${job.fullName.replace('/', '/job/')}/${number}/",
                            causes: opts.causes ?: [new Cause.UserIdCause('alice')])
  run.allActions << new LibrariesAction((opts.loaded ?: [loadedLibrary()]) as List)
  if (opts.head != false) SCMHead.HeadByItem.heads[job] = opts.head ?: new SCMHead('main')
  if (opts.source != false) {
    GitSource source = new GitSource(remote: 'https://git.example.com/team/app.git')
    SCMSource.SourceByItem.sources[job] = source
    // What the branch source attaches before the Jenkinsfile runs.
    run.allActions << new SCMRevisionAction(source, new GitRevision(hash: opts.commit ?: '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c'))
  }
  Jenkins.get().rootUrl = opts.containsKey('rootUrl') ? opts.rootUrl : "${jenkinsUrl}/".toString()
  Jenkins.get().plugins['mask-passwords'] = new hudson.PluginWrapper(true)
  lastHarness = new Harness(root, run, (opts.buildEnv ?: [:]) as Map, (opts.agentEnv ?: [:]) as Map)
  return lastHarness
}
/** The most recent build, whose log a failing test shows. */
@Field Harness lastHarness

/** As docs/jenkins.md shows it: the token goes to curl on its standard input, never on a command line. */
String idTokenInBuild(Harness h, String audience = 'sts.amazonaws.com') {
  String out = h.sh(returnStdout: true, script: """{ printf 'Authorization: Bearer '; cat "\$JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE"; } | curl -fsS -H @- "\$JENKINS_ID_TOKEN_REQUEST_URL&audience=${audience}" """) as String
  (new JsonSlurper().parseText(out) as Map).value as String
}

Map<String, Closure> tests = [:]

tests['mint -> private token file -> ID token -> revoke and delete at block end'] = {
  Harness h = controller()
  String token, file, jwt, folderMode, fileMode
  h.pipeline {
    withJenkinsOidc(audience: ['sts.amazonaws.com']) {
      file = env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE
      assert env.JENKINS_ID_TOKEN_REQUEST_URL == "${serviceUrl}/id-token?api-version=1"
      assert env.JENKINS_ID_TOKEN_REQUEST_TOKEN == null
      token = new File(file).text
      assert token ==~ /jort_[A-Za-z0-9_-]{43}/
      assert file ==~ /${java.util.regex.Pattern.quote(h.workspace.path + '@tmp')}\/jenkins-oidc-[0-9a-f]{32}\/request-token/
      folderMode = h.sh(returnStdout: true, script: "stat -c %a \"\$(dirname '${file}')\"").trim()
      fileMode = h.sh(returnStdout: true, script: "stat -c %a '${file}'").trim()
      jwt = idTokenInBuild(h)
    }
  }
  assert [folderMode, fileMode] == ['700', '600']
  Map c = claimsOf(jwt)
  assert c.iss == issuer
  assert c.aud == 'sts.amazonaws.com'
  assert c.sub == "jenkins_instance:${clientId}:job:team/app/main"
  assert c.job == 'team/app/main' && c.build_number == '42'
  assert c.build_url == "${jenkinsUrl}/job/team/job/app/job/main/42/"
  assert c.ref == 'refs/heads/main' && c.ref_type == 'branch'
  assert c.commit == '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c'
  assert c.repository == 'https://git.example.com/team/app'
  assert c.triggered_by == 'alice'
  assert c.replayed == 'false'
  assert !new File(file).exists() && !new File(file).parentFile.exists()
  assert !h.stepArgumentsText().contains(token)
  Map after = exchange(serviceUrl, token)
  assert after.status == 400 && after.body.error_description == 'the build request token has been revoked'
}

tests['the token is revoked and its folder deleted when the block fails'] = {
  Harness h = controller()
  String token, file
  try {
    h.pipeline {
      withJenkinsOidc {
        file = env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE
        token = new File(file).text
        sh 'exit 3'
      }
    }
    assert false: 'the block should have failed'
  } catch (PipelineError e) {
    assert e.message == 'script returned exit code 3'
  }
  assert exchange(serviceUrl, token).body.error_description == 'the build request token has been revoked'
  assert !new File(file).parentFile.exists()
}

tests['claims come from the Run even when the environment says otherwise (CVE-2025-47884)'] = {
  Map forged = [JOB_NAME: 'prod/deploy', BRANCH_NAME: 'release', BUILD_NUMBER: '999', BUILD_URL: 'https://evil.example.com/job/prod/999/',
                GIT_COMMIT: 'deadbeefdeadbeef', CHANGE_ID: '7', BUILD_USER_ID: 'admin', JENKINS_URL: 'https://evil.example.com/']
  Harness h = controller(buildEnv: forged)
  String jwt
  h.pipeline {
    withEnv(forged.collect { k, v -> "${k}=${v}" as String }) {
      withJenkinsOidc { jwt = idTokenInBuild(h) }
    }
  }
  Map c = claimsOf(jwt)
  assert c.job == 'team/app/main' && c.build_number == '42' && c.ref == 'refs/heads/main'
  assert c.build_url.startsWith(jenkinsUrl) && c.jenkins_url == jenkinsUrl
  assert c.commit == '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c' && c.triggered_by == 'alice' && c.pull_request == null
}

tests['a pull-request build carries ref_type pull_request'] = {
  Harness h = controller(job: 'team/app/PR-12', head: new PullRequestHead('12'), causes: [[getShortDescription: { 'Branch indexing' }] as Cause])
  String jwt
  h.pipeline { withJenkinsOidc { jwt = idTokenInBuild(h) } }
  Map c = claimsOf(jwt)
  assert c.ref == 'refs/pull/12/head' && c.ref_type == 'pull_request' && c.pull_request == '12'
  assert c.job == 'team/app/PR-12' && c.triggered_by == 'Branch indexing'
}

tests['a tag build carries ref_type tag'] = {
  Harness h = controller(job: 'team/app/v1.2.0', head: new GitTagHead('v1.2.0'))
  String jwt
  h.pipeline { withJenkinsOidc { jwt = idTokenInBuild(h) } }
  assert claimsOf(jwt).subMap(['ref', 'ref_type']) == [ref: 'refs/tags/v1.2.0', ref_type: 'tag']
}

def failure = { Harness h, Closure jenkinsfile ->
  try {
    h.pipeline(jenkinsfile)
  } catch (Exception e) {
    return e.message
  }
  return 'no failure'
}

tests['a missing or wrong credential gives a clear error'] = {
  String missing = failure(controller(credential: new UsernamePasswordCredentialsImpl(CredentialsScope.SYSTEM, 'other-id', '', clientId, clientSecret))) { withJenkinsOidc { } }
  assert missing == "no credential with id 'jenkins-oidc-client': create a 'Username with password' credential with scope System (username = client_id, password = client_secret from `jenkins-oidc clients add`) under Manage Jenkins > Credentials > System > Global credentials"
  String global = failure(controller(credential: new UsernamePasswordCredentialsImpl(CredentialsScope.GLOBAL, 'jenkins-oidc-client', '', clientId, clientSecret))) { withJenkinsOidc { } }
  assert global == "credential 'jenkins-oidc-client' has scope GLOBAL; it must be System, or Jenkinsfile code could read the client secret with withCredentials"
  String wrong = failure(controller(credential: new UsernamePasswordCredentialsImpl(CredentialsScope.SYSTEM, 'jenkins-oidc-client', '', clientId, 'jocs_wrong'))) { withJenkinsOidc { } }
  assert wrong == "could not mint a build request token at ${serviceUrl}/token: invalid_client: client authentication failed (check the client_id and client_secret in the credential against `jenkins-oidc clients show`)"
}

tests['the service URL comes from the controller, and a step cannot send the secret elsewhere'] = {
  String none = failure(controller(props: [:])) { withJenkinsOidc { } }
  assert none == 'no token service URL configured: an administrator sets the global property JENKINS_OIDC_URL (Manage Jenkins > System > Global properties, or Configuration as Code; docs/jenkins.md#3-tell-the-controller-where-the-service-is)'
  String evil = failure(controller()) { withJenkinsOidc(serviceUrl: 'https://evil.example.com') { } }
  assert evil == "serviceUrl https://evil.example.com is not allowed: a credential's secret goes only to the service an administrator paired it with. An administrator can list the pair in JENKINS_OIDC_ALLOWED_SERVICES as 'URL CREDENTIALS_ID'"
  String otherCredential = failure(controller()) { withJenkinsOidc(credentialsId: 'prod-database') { } }
  assert otherCredential == "credentialsId prod-database is not allowed: a credential's secret goes only to the service an administrator paired it with. An administrator can list the pair in JENKINS_OIDC_ALLOWED_SERVICES as 'URL CREDENTIALS_ID'"
  String down = failure(controller(props: [JENKINS_OIDC_URL: 'https://127.0.0.1:9'])) { withJenkinsOidc { } }
  assert down == 'could not mint a build request token: the token service at https://127.0.0.1:9/token did not answer (ConnectException)'
  String allowed = failure(controller(props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOWED_SERVICES: ' https://127.0.0.1:9 jenkins-oidc-client , https://other.example.com other-cred'])) { withJenkinsOidc(serviceUrl: 'https://127.0.0.1:9') { } }
  assert allowed == 'could not mint a build request token: the token service at https://127.0.0.1:9/token did not answer (ConnectException)'
  String query = failure(controller(props: [JENKINS_OIDC_URL: 'https://user@oidc.example.com/?x=1'])) { withJenkinsOidc { } }
  assert query == "the token service URL 'https://user@oidc.example.com/?x=1' is not an https URL without query, fragment or user part; fix JENKINS_OIDC_URL"
  String pair = failure(controller(props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOWED_SERVICES: 'https://other.example.com'])) { withJenkinsOidc { } }
  assert pair == "JENKINS_OIDC_ALLOWED_SERVICES: 'https://other.example.com' is not 'URL CREDENTIALS_ID' (one pair per line or comma)"
}

tests['without the Mask Passwords plugin jenkinsOidcToken works and says the ID token is not masked'] = {
  Harness h = controller()
  Jenkins.get().plugins.remove('mask-passwords')
  try {
    String jwt
    h.pipeline { jenkinsOidcToken(audience: 'sts.amazonaws.com') { String t -> jwt = t } }
    assert claimsOf(jwt).job == 'team/app/main'
    assert h.logText() == 'jenkins-oidc: the Mask Passwords plugin is not installed, so the ID token is not masked in this log\n'
  } finally {
    Jenkins.get().plugins['mask-passwords'] = new hudson.PluginWrapper(true)
  }
}

tests['jenkinsOidcToken returns an ID token; the block form masks it'] = {
  Harness h = controller()
  String jwt
  h.pipeline {
    jwt = jenkinsOidcToken(audience: 'sts.amazonaws.com')
    jenkinsOidcToken(audience: 'sts.amazonaws.com') { String t -> sh "echo 'inside: ${t}'" }
  }
  assert claimsOf(jwt).job == 'team/app/main'
  assert h.logText().contains('inside: ********')
}

tests['withAwsOidc without Node.js: web identity token files through curl, nested roles'] = {
  Harness h = controller()
  Map outer = [:], inner = [:], afterInner = [:]
  h.pipeline {
    withAwsOidc(roleArn: 'arn:aws:iam::111111111111:role/build', region: 'eu-west-1', useNode: false) {
      outer = [role: env.AWS_ROLE_ARN, file: env.AWS_WEB_IDENTITY_TOKEN_FILE, session: env.AWS_ROLE_SESSION_NAME, region: env.AWS_REGION]
      withAwsOidc(roleArn: 'arn:aws:iam::222222222222:role/deploy', useNode: false) {
        inner = [role: env.AWS_ROLE_ARN, file: env.AWS_WEB_IDENTITY_TOKEN_FILE, jwt: new File(env.AWS_WEB_IDENTITY_TOKEN_FILE).text]
      }
      afterInner = [role: env.AWS_ROLE_ARN, jwt: new File(env.AWS_WEB_IDENTITY_TOKEN_FILE).text]
    }
  }
  assert outer.role == 'arn:aws:iam::111111111111:role/build' && outer.region == 'eu-west-1' && outer.session == 'jenkins-42'
  assert inner.role == 'arn:aws:iam::222222222222:role/deploy' && inner.file != outer.file
  assert afterInner.role == outer.role
  [inner.jwt, afterInner.jwt].each { String jwt ->
    Map c = claimsOf(jwt)
    assert c.aud == 'sts.amazonaws.com' && c.job == 'team/app/main'
  }
  assert !new File(outer.file as String).exists() && !new File(inner.file as String).exists()
}

tests['withAwsOidc explains what a mode needs'] = {
  String msg = failure(controller()) { withAwsOidc(roleArn: 'arn:aws:iam::111111111111:role/build', mode: 'credentials', useNode: false) { } }
  assert msg == "withAwsOidc: mode 'credentials' on this agent needs Node.js 18+ on the PATH; mode 'web-identity' works with curl alone on Linux and macOS agents"
  assert failure(controller()) { withAwsOidc([:]) { } }.startsWith('withAwsOidc: roleArn is required')
}

/** Runs the real AWS SDK in the build (as any tool would) and returns who it is. */
Map whoAmI(Harness h, String how) {
  new JsonSlurper().parseText(h.sh(returnStdout: true, script: "node '${probe}' ${how}") as String) as Map
}

tests['withAwsOidc web-identity through the agent: the AWS SDK in the block runs as the role'] = {
  Harness h = controller(buildEnv: awsAgentEnv)
  Map who
  String file
  h.pipeline {
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1') {
      file = env.AWS_WEB_IDENTITY_TOKEN_FILE
      assert env.AWS_ROLE_ARN == deployRole && env.AWS_ROLE_SESSION_NAME == 'team.app.main-42'
      who = whoAmI(h, 'token-file')
    }
  }
  assert who.arn == "arn:aws:sts::${deployRole.split(':')[4]}:assumed-role/deploy/team.app.main-42"
  assert h.logText().contains("fetch-agent.cjs' '${serviceUrl}/agent/jenkins-oidc-agent.mjs'")
  assert !new File(file).exists()
}

tests['withAwsOidc chainRoleArns: the block runs as the chained role in another account; web-identity mode refuses it'] = {
  Harness h = controller(buildEnv: awsAgentEnv)
  Map who
  h.pipeline {
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: 'credentials', chainRoleArns: [chainedRole]) {
      who = whoAmI(h, 'ini')
    }
  }
  assert who.arn == 'arn:aws:sts::210987654321:assumed-role/prod-deploy/team.app.main-42' && who.account == '210987654321'
  assert h.logText().contains("'--chain-role-arn' '${chainedRole}'")
  String msg = failure(controller(buildEnv: awsAgentEnv)) { withAwsOidc(roleArn: deployRole, chainRoleArns: chainedRole) { } }
  assert msg == "withAwsOidc: chainRoleArns needs mode: 'credentials' (the SDKs assume only the first role from a web identity token file)"
}

tests['withKubernetesOidc: kubectl in the block authenticates as this job; the kubeconfig holds no token and is gone after'] = {
  assert failure(controller()) { withKubernetesOidc([:]) { } }.startsWith('withKubernetesOidc: server is required')
  assert failure(controller()) { withKubernetesOidc(server: 'http://k8s.example.com') { } } == "withKubernetesOidc: server must be https (the ID token is a bearer token), got 'http://k8s.example.com'"
  // kubectl and the kube-apiserver stand-in (Go) are there only where library.test.ts could start them.
  if (!kubeServer) { println 'SKIPPED part: kubectl or the kube-apiserver stand-in is missing'; return }
  Harness h = controller(buildEnv: [NODE_EXTRA_CA_CERTS: System.getenv('JENKINS_OIDC_TEST_CA')])
  String file, text
  Map who
  h.pipeline {
    withKubernetesOidc(server: kubeServer, certificateAuthority: System.getenv('JENKINS_OIDC_TEST_CA')) {
      file = env.KUBECONFIG
      text = new File(file).text
      who = new JsonSlurper().parseText(h.sh(returnStdout: true, script: 'kubectl auth whoami -o json') as String) as Map
    }
  }
  assert who.status.userInfo.username == 'jenkins:jenkins_instance:ci-main:job:team/app/main'
  assert file == new File(new File(file).parentFile, 'kubeconfig').path
  assert !text.contains('eyJ') && !new File(file).exists()
}

/** Vault's Python client (hvac) asking Vault about a token (lookup-self), as a tool in the block would with the file's token. */
Map hvacLookup(String token) {
  String request = groovy.json.JsonOutput.toJson([op: 'lookup-self', addr: vaultUrl, token: token])
  Process p = [System.getenv('JENKINS_OIDC_TEST_PYTHON'), System.getenv('JENKINS_OIDC_TEST_HVAC_PROBE'), request].execute()
  String out = p.inputStream.text
  p.waitFor()
  return new JsonSlurper().parseText(out) as Map
}

tests['withVaultOidc: a Vault token in a private file for the block, revoked at its end; never a step argument or variable'] = {
  assert failure(controller()) { withVaultOidc([:]) { } }.startsWith('withVaultOidc: vaultAddr and role are required')
  // The Vault stand-in and hvac are there only where library.test.ts could start them.
  if (!vaultUrl) { println 'SKIPPED part: hvac (python3-hvac) is missing'; return }
  Harness h = controller(buildEnv: [NODE_EXTRA_CA_CERTS: System.getenv('JENKINS_OIDC_TEST_CA'), VAULT_TOKEN: 'hvs.an-outer-token'])
  String file, token, mode, outer
  Map who
  h.pipeline {
    withVaultOidc(vaultAddr: vaultUrl, role: 'deploy') {
      file = env.JENKINS_OIDC_VAULT_TOKEN_FILE
      assert env.VAULT_ADDR == vaultUrl
      outer = h.sh(returnStdout: true, script: 'printf %s "${VAULT_TOKEN:-}"')
      token = new File(file).text
      mode = h.sh(returnStdout: true, script: "stat -c %a '${file}'").trim()
      who = hvacLookup(token)
    }
  }
  assert outer == '' && mode == '600' && token.startsWith('hvs.')
  assert who == [ok: true, policies: ['default', 'app-read'], meta: [job: 'team/app/main', build_number: '42', jenkins_instance: 'ci-main', role: 'deploy']]
  assert hvacLookup(token) == [ok: false, error: 'Forbidden', errors: ['permission denied']]
  assert !h.stepArgumentsText().contains(token) && !h.logText().contains(token)
  assert !new File(file).exists()
}

tests['withAzureOidc: the ID token in a private file for the Azure SDKs and az, kept fresh, gone at the block\'s end; never a step argument or variable'] = {
  assert failure(controller()) { withAzureOidc(clientId: azureClientId) { } }.startsWith('withAzureOidc: clientId and tenantId are required')
  // The Entra stand-in is there only where library.test.ts started it.
  if (!entraHost) { println 'SKIPPED part: no Entra stand-in (JENKINS_OIDC_TEST_ENTRA_HOST)'; return }
  // A secret the build's environment has (a node property, an outer withEnv): the SDKs would prefer it.
  Harness h = controller(buildEnv: [NODE_EXTRA_CA_CERTS: System.getenv('JENKINS_OIDC_TEST_CA'), AZURE_CLIENT_SECRET: 'an-outer-client-secret'])
  String file, token, mode, outerSecret, configDir
  Map<String, String> seen
  h.pipeline {
    withAzureOidc(clientId: azureClientId, tenantId: azureTenantId, authorityHost: entraHost) {
      file = env.AZURE_FEDERATED_TOKEN_FILE
      configDir = env.AZURE_CONFIG_DIR
      seen = [client: env.AZURE_CLIENT_ID, tenant: env.AZURE_TENANT_ID, authority: env.AZURE_AUTHORITY_HOST]
      outerSecret = h.sh(returnStdout: true, script: 'printf %s "${AZURE_CLIENT_SECRET:-}"')
      token = new File(file).text
      mode = h.sh(returnStdout: true, script: "stat -c %a '${file}'").trim()
    }
  }
  assert seen == [client: azureClientId, tenant: azureTenantId, authority: entraHost]
  assert outerSecret == '' && mode == '600'
  // Beside the workspace root, in the block's private folder, with az's own config folder.
  assert file.contains('@tmp/') && new File(file).name == 'azure-federated-token' && configDir == new File(new File(file).parentFile, 'azure-cli').path
  Map claims = new JsonSlurper().parseText(new String(Base64.urlDecoder.decode(token.split('\\.')[1]), 'UTF-8')) as Map
  assert claims.aud == 'api://AzureADTokenExchange' && claims.sub == 'jenkins_instance:ci-main:job:team/app/main'
  assert !h.stepArgumentsText().contains(token) && !h.logText().contains(token)
  // Gone when the block ends: the folder, and with it the refresher the agent started.
  assert !new File(file).parentFile.exists()
  java.util.regex.Matcher started = h.logText() =~ /keeping \S+ fresh in the background \(pid (\d+)\)/
  assert started.find()
  String pid = started.group(1)
  long deadline = System.currentTimeMillis() + 30000
  while (new ProcessBuilder('kill', '-0', pid).start().waitFor() == 0 && System.currentTimeMillis() < deadline) Thread.sleep(200)
  assert new ProcessBuilder('kill', '-0', pid).start().waitFor() != 0
}

tests['withGcpOidc: an external_account file running the agent, no token in it or in any step; gcloud signs in through it; gone at the block\'s end'] = {
  assert failure(controller()) { withGcpOidc([:]) { } }.startsWith('withGcpOidc: provider is required')
  if (!gcpSts) { println 'SKIPPED part: no Google STS stand-in (JENKINS_OIDC_TEST_GCP_STS)'; return }
  String ca = System.getenv('JENKINS_OIDC_TEST_CA')
  // An access token file named from outside the block: gcloud would use it before any credential file.
  Harness h = controller(buildEnv: [NODE_EXTRA_CA_CERTS: ca, CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE: ca, CLOUDSDK_CORE_DISABLE_PROMPTS: '1', REQUESTS_CA_BUNDLE: '',
                                    CLOUDSDK_AUTH_ACCESS_TOKEN_FILE: '/nonexistent/outer-access-token'])
  String file, text, mode, outer, configDir, accessToken
  Map<String, String> seen
  h.pipeline {
    withGcpOidc(provider: gcpProvider, tokenUrl: "${gcpSts}/v1/token", tokenInfoUrl: "${gcpSts}/v1/introspect") {
      file = env.GOOGLE_APPLICATION_CREDENTIALS
      configDir = env.CLOUDSDK_CONFIG
      seen = [override: env.CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE, executables: env.GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES]
      outer = h.sh(returnStdout: true, script: 'printf %s "${CLOUDSDK_AUTH_ACCESS_TOKEN_FILE:-}"')
      text = new File(file).text
      mode = h.sh(returnStdout: true, script: "stat -c %a '${file}'").trim()
      if (gcloud) {
        h.sh(script: 'gcloud auth login --cred-file="$GOOGLE_APPLICATION_CREDENTIALS"')
        accessToken = h.sh(returnStdout: true, script: 'gcloud auth print-access-token').trim()
      }
    }
  }
  assert seen == [override: file, executables: '1'] && outer == '' && mode == '600'
  assert file.contains('@tmp/') && configDir == new File(new File(file).parentFile, 'gcloud').path
  Map cred = new JsonSlurper().parseText(text) as Map
  assert cred.type == 'external_account' && cred.audience == "//iam.googleapis.com/${gcpProvider}".toString() && cred.token_url == "${gcpSts}/v1/token".toString()
  assert (cred.credential_source.executable.command as String).endsWith(" gcp-credential --audience https://iam.googleapis.com/${gcpProvider}".toString())
  assert !text.contains('eyJ')
  if (gcloud) {
    assert accessToken.startsWith('ya29.') && !h.logText().contains(accessToken) && !h.stepArgumentsText().contains(accessToken)
  } else {
    println 'SKIPPED part: gcloud is not installed'
  }
  assert !new File(file).parentFile.exists()
}

tests['withAwsOidc credentials mode: keys only in a private shared-credentials file, never in the environment or a step'] = {
  // Keys the build's environment has (node properties, an outer withEnv): cleared inside the block.
  Harness h = controller(buildEnv: awsAgentEnv + [AWS_ACCESS_KEY_ID: 'AKIABUILDSOWNKEY0000', AWS_SECRET_ACCESS_KEY: 'build-own-secret'])
  Map who, viaDefault
  String file, text, mode
  h.pipeline {
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: 'credentials', durationSeconds: 900, sessionName: 'deploy-42') {
      file = env.AWS_SHARED_CREDENTIALS_FILE
      assert env.AWS_PROFILE == 'jenkins-oidc' && env.AWS_REGION == 'eu-west-1'
      assert env.AWS_ACCESS_KEY_ID == null && env.AWS_SECRET_ACCESS_KEY == null && env.AWS_SESSION_TOKEN == null
      text = new File(file).text
      mode = h.sh(returnStdout: true, script: "stat -c %a '${file}'").trim()
      who = whoAmI(h, 'ini')
      viaDefault = whoAmI(h, 'default')
    }
  }
  assert file == new File(new File(file).parentFile, 'aws-credentials').path && mode == '600'
  List<String> keys = text.readLines().findAll { it.contains(' = ') }.collect { it.split(' = ')[1] }
  assert text.readLines()[0] == '[jenkins-oidc]' && keys.size() == 3 && keys[0] == who.accessKeyId
  assert who.arn.endsWith(':assumed-role/deploy/deploy-42') && viaDefault.arn == who.arn
  keys.each { assert !h.stepArgumentsText().contains(it) && !h.logText().contains(it) }
  assert !new File(file).exists()
}

tests['several roles in one build: nested blocks through the agent'] = {
  Harness h = controller(buildEnv: awsAgentEnv)
  List<String> seen = []
  h.pipeline {
    withAwsOidc(roleArn: auditRole, region: 'eu-west-1') {
      seen << (whoAmI(h, 'token-file').arn as String)
      withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: 'credentials') {
        seen << (whoAmI(h, 'default').arn as String)
      }
      seen << (whoAmI(h, 'token-file').arn as String)
    }
  }
  assert seen.collect { it.split('/')[1] } == ['audit', 'deploy', 'audit']
}

tests['a web-identity block inside a credentials block runs as the inner role (the SDK default chain)'] = {
  Harness h = controller(buildEnv: awsAgentEnv + [HOME: File.createTempDir('jo-home', '').path])
  List<String> seen = []
  h.pipeline {
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: 'credentials') {
      seen << (whoAmI(h, 'default').arn as String)
      withAwsOidc(roleArn: auditRole, region: 'eu-west-1') {
        seen << (whoAmI(h, 'default').arn as String)
      }
      seen << (whoAmI(h, 'default').arn as String)
    }
  }
  assert seen.collect { it.split('/')[1] } == ['deploy', 'audit', 'deploy']
}

tests['a role whose trust policy does not admit this job fails with the explanation'] = {
  Harness h = controller(buildEnv: awsAgentEnv)
  String msg = failure(h) { withAwsOidc(roleArn: otherRole, region: 'eu-west-1') { } }
  assert msg == 'script returned exit code 1'
  assert h.logText().contains('jenkins_instance:ci-main:job:team/app/main')
  assert h.logText().contains('AccessDenied')
}

// ---- Replay, checkout, step arguments -----------------------------------------------

@Field String REPLAY_REFUSED = 'jenkins-oidc: this build is started by Replay (the Rebuild buttons of Jenkins, Blue Ocean and Pipeline Graph View replay too), which runs pipeline code that is not in SCM; ' +
                               'it gets no token. Build it anew from SCM (Build Now, or a push), or an administrator sets the global property JENKINS_OIDC_ALLOW_REPLAY=true (tokens then carry replayed=true)'

tests['a replayed build is refused by default, with the reason and the fix'] = {
  Harness h = controller(causes: [new ReplayCause(41), new Cause.UserIdCause('mallory')])
  String msg = failure(h) { withJenkinsOidc { } }
  assert msg == REPLAY_REFUSED
  assert failure(h) { jenkinsOidcToken() } == msg
  assert h.workspace.parentFile.listFiles().find { it.name == h.workspace.name + '@tmp' }.list() as List == []
}

tests['a replayed build mints when the admin allows it, and its tokens say replayed=true'] = {
  Harness h = controller(causes: [new ReplayCause(41), new Cause.UserIdCause('mallory')],
                         props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOW_REPLAY: 'true'])
  String jwt
  h.pipeline { withJenkinsOidc { jwt = idTokenInBuild(h) } }
  Map c = claimsOf(jwt)
  assert c.replayed == 'true' && c.triggered_by == 'mallory' && c.job == 'team/app/main'
}

// ---- Issue 22: the harness as strict as Jenkins, and what it showed ---------------------

tests['the agent\'s own AWS variables are refused by name in every mode, never silently used (Launcher.inherit)'] = {
  [[mode: 'web-identity', useNode: false, agentEnv: [AWS_ACCESS_KEY_ID: 'AKIAAGENTSOWNKEY0000', AWS_SECRET_ACCESS_KEY: 'agent-own-secret'], names: 'AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY'],
   [mode: 'web-identity', useNode: true, agentEnv: [AWS_PROFILE: 'agent-profile'], names: 'AWS_PROFILE'],
   [mode: 'credentials', useNode: true, agentEnv: [AWS_ROLE_ARN: 'arn:aws:iam::111111111111:role/irsa', AWS_WEB_IDENTITY_TOKEN_FILE: '/var/run/secrets/eks/token'], names: 'AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE'],
  ].each { Map c ->
    Harness h = controller(buildEnv: awsAgentEnv, agentEnv: c.agentEnv as Map)
    boolean ran = false
    String token
    String msg = failure(h) {
      withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: c.mode, useNode: c.useNode) {
        ran = true
      }
    }
    assert msg == "withAwsOidc: the agent's own environment sets ${c.names}, which AWS SDKs and the CLI would use instead of the role; Jenkins cannot unset a variable " +
                  "the agent process itself has (withEnv only hides it from env). Remove them from the agent's environment (its service or pod definition), or run this block " +
                  "on an agent without AWS credentials of its own"
    assert !ran
    assert h.logText().contains("ERROR: ${msg}")
  }
}

tests['inside dir(), the token and AWS keys lie beside the workspace root, never inside the workspace'] = {
  Harness h = controller(buildEnv: awsAgentEnv)
  String tokenFile, credentials
  h.pipeline {
    dir('sub') {
      withJenkinsOidc { tokenFile = env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE }
      withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: 'credentials') { credentials = env.AWS_SHARED_CREDENTIALS_FILE }
    }
  }
  String tmp = h.workspace.path + '@tmp' + File.separator
  assert tokenFile.startsWith(tmp) && credentials.startsWith(tmp)
  assert !tokenFile.startsWith(h.workspace.path + File.separator) && !credentials.startsWith(h.workspace.path + File.separator)
}

tests['with the agent gone, the block\'s own error stands and its token is revoked all the same'] = {
  Harness h = controller()
  String token
  String msg = failure(h) {
    withJenkinsOidc {
      token = new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String).text
      h.agentGone = true
      error('deploy failed')
    }
  }
  assert msg == 'deploy failed'
  assert exchange(serviceUrl, token).body.error_description == 'the build request token has been revoked'
  assert !h.logText().contains('Unable to create live FilePath') && !h.logText().contains('could not revoke')
  Harness curl = controller()
  String awsMsg = failure(curl) {
    withAwsOidc(roleArn: deployRole, useNode: false) {
      curl.agentGone = true
      error('aws deploy failed')
    }
  }
  assert awsMsg == 'aws deploy failed'
}

tests['without the controller\'s root URL, the error names the setting'] = {
  String msg = failure(controller(rootUrl: null)) { withJenkinsOidc { } }
  assert msg == "jenkins-oidc: the controller's Jenkins URL is not configured (Manage Jenkins > System > Jenkins URL, or unclassified.location.url in Configuration as Code): " +
                "every token carries the build's URL, made from it, and the service checks it against the registered Jenkins URL"
}

tests['the curl refresher survives another sh being stopped in the same directory (durable-task cookie)'] = {
  Harness h = controller()
  int pid
  List<Integer> killed
  boolean alive
  h.pipeline {
    withAwsOidc(roleArn: deployRole, useNode: false, refreshInterval: 1) {
      String folder = new File(env.AWS_WEB_IDENTITY_TOKEN_FILE as String).parent
      pid = new File(folder, 'refresher.pid').text.trim() as int
      // A timeout or a fail-fast branch stops a sh step in this directory.
      killed = h.stopShIn(h.cwd)
      alive = new ProcessBuilder('kill', '-0', pid as String).start().waitFor() == 0
    }
  }
  assert alive && !killed.contains(pid)
}

tests['GitHub sources give the repository without .git: one form for every source'] = {
  Harness h = controller()
  GitHubSCMSourceAlias source = new GitHubSCMSourceAlias('acme', 'app')
  SCMSource.SourceByItem.sources[h.run.parent] = source
  String jwt
  h.pipeline { withJenkinsOidc { jwt = idTokenInBuild(h) } }
  assert claimsOf(jwt).repository == 'https://github.com/acme/app'
}

tests['the Rebuild button (it replays) is refused with a message that says what happened and what to do'] = {
  // ReplayAction.doRebuild, Blue Ocean and Pipeline Graph View all attach a ReplayCause.
  String msg = failure(controller(causes: [new ReplayCause(41), new Cause.UserIdCause('alice')])) { withJenkinsOidc { } }
  assert msg.contains('the Rebuild buttons of Jenkins, Blue Ocean and Pipeline Graph View replay too') && msg.contains('Build it anew from SCM (Build Now, or a push)')
}

tests['library failures end the build as one line (an AbortException), never a stack trace'] = {
  Harness h = controller(props: [:])
  failure(h) { withJenkinsOidc { } }
  assert h.logText().startsWith('ERROR: no token service URL configured')
  assert !h.logText().contains('\tat ')
  assert new JenkinsOidcException('x') instanceof hudson.AbortException
}

tests['a disabled Mask Passwords plugin counts as absent: the step works and says the token is not masked'] = {
  Harness h = controller()
  Jenkins.get().plugins['mask-passwords'] = new hudson.PluginWrapper(false)
  String jwt
  h.pipeline { jenkinsOidcToken(audience: 'sts.amazonaws.com') { String t -> jwt = t } }
  assert claimsOf(jwt).job == 'team/app/main'
  assert h.logText() == 'jenkins-oidc: the Mask Passwords plugin is not installed, so the ID token is not masked in this log\n'
}

tests['connections go through Jenkins\' proxy settings, and global property names are case-insensitive (as EnvVars)'] = {
  hudson.ProxyConfiguration.opened.clear()
  Harness h = controller(props: [jenkins_oidc_url: serviceUrl, Jenkins_Oidc_Request_Token_Ttl: '10m'])
  Map minted = attempt(h) { TokenService.mintForCurrentBuild([:]) } as Map
  assert minted.expiresIn == 600
  assert attempt(h) { TokenService.revokeForCurrentBuild([:], minted.id as String) } == true
  assert hudson.ProxyConfiguration.opened == ["${serviceUrl}/token".toString(), "${serviceUrl}/token/revocation".toString()]
}

// ---- Issue 16: the Jenkins around the library -----------------------------------------

@Field String SECURITY = 'docs/jenkins.md#security-model'

tests['version override: a library configuration that lets Jenkinsfiles choose its version gets no token'] = {
  String overridable = failure(controller(libraries: [pinnedLibrary(allowVersionOverride: true)])) { withJenkinsOidc { } }
  assert overridable == "jenkins-oidc: the Global Trusted Pipeline Library 'jenkins-oidc' allows its default version to be overridden, so any Jenkinsfile could load any branch or old commit " +
                        "of it as trusted code and read this controller's credentials; it mints no token. An administrator unticks 'Allow default version to be overridden' " +
                        "(Configuration as Code: allowVersionOverride: false) and pins the default version to a release tag (${SECURITY})"
  // Jenkins' own default is override on: a configuration that never mentions it is refused too.
  LibraryConfiguration untouched = new LibraryConfiguration('jenkins-oidc')
  untouched.defaultVersion = 'v1.0.0'
  assert failure(controller(libraries: [untouched])) { jenkinsOidcToken(audience: 'sts.amazonaws.com') } == overridable
  String byBranch = failure(controller(libraries: [pinnedLibrary(allowBRANCH_NAME: true)])) { withJenkinsOidc { } }
  assert byBranch == "jenkins-oidc: the Global Trusted Pipeline Library 'jenkins-oidc' allows BRANCH_NAME as its version, so a branch of a job picks a branch of the library; " +
                     "it mints no token. An administrator unticks it (Configuration as Code: allowBRANCH_NAME: false) (${SECURITY})"
}

tests['version override: loaded at another version than the configured default, or not as the global trusted library, no token'] = {
  String moved = failure(controller(loaded: [loadedLibrary('feature/steal')])) { withJenkinsOidc { } }
  assert moved == "jenkins-oidc: this build loaded 'jenkins-oidc' at version 'feature/steal', not its configured default 'v1.0.0' (the configuration changed after the build started?); it mints no token (${SECURITY})"
  String folder = failure(controller(loaded: [loadedLibrary('v1.0.0', false)])) { withJenkinsOidc { } }
  assert folder == "jenkins-oidc: the library 'jenkins-oidc' is not a Global Trusted Pipeline Library; it mints only as one (Manage Jenkins > System > Global Trusted Pipeline Libraries; ${SECURITY})"
  String renamed = failure(controller(loaded: [loadedLibrary('v1.0.0', true, 'oidc-dev')])) { withJenkinsOidc { } }
  assert renamed == "jenkins-oidc: the library 'oidc-dev' is not a Global Trusted Pipeline Library; it mints only as one (Manage Jenkins > System > Global Trusted Pipeline Libraries; ${SECURITY})"
  String twice = failure(controller(libraries: [pinnedLibrary(), new LibraryConfiguration('oidc-dev')], loaded: [loadedLibrary(), loadedLibrary('main', true, 'oidc-dev')])) { withJenkinsOidc { } }
  assert twice == "jenkins-oidc: this build loaded 2 libraries providing withJenkinsOidc; it mints only when exactly one, the Global Trusted Pipeline Library, is loaded (${SECURITY})"
  // Nothing was minted for any of them.
  assert lastHarness.workspace.parentFile.listFiles().find { it.name == lastHarness.workspace.name + '@tmp' }.list() as List == []
}

/** A build `number` of team/app/main that a declarative "Restart from Stage" made from `original`. */
Harness restartOf(FakeRun original, int number, Map opts = [:]) {
  controller([number: number, causes: [new Cause.UserIdCause('mallory'), new RestartDeclarativePipelineCause(original, original?.number ?: number - 1, 'Deploy')]] + opts)
}

FakeRun earlierBuild(int number, List<Cause> causes) {
  new FakeRun(parent: new FakeJob(fullName: 'team/app/main'), number: number, absoluteUrl: "${jenkinsUrl}/job/team/job/app/job/main/${number}/", causes: causes)
}

@Field String RESTART_REFUSED = 'jenkins-oidc: this build is a restart of build #%d, which ran pipeline code that may not be in SCM (a Replay, or a restart of one); it gets no token. ' +
                                'Build it anew from SCM (Build Now, or a push), or an administrator sets the global property JENKINS_OIDC_ALLOW_REPLAY=true (tokens then carry replayed=true)'

tests['restart from stage: a restart of a Replay is refused, at any depth, and so is one whose original is gone'] = {
  FakeRun replayed = earlierBuild(40, [new ReplayCause(39), new Cause.UserIdCause('mallory')])
  assert failure(restartOf(replayed, 41)) { withJenkinsOidc { } } == String.format(RESTART_REFUSED, 40)
  FakeRun restartOfReplay = earlierBuild(41, [new Cause.UserIdCause('mallory'), new RestartDeclarativePipelineCause(replayed, 40, 'Build')])
  assert failure(restartOf(restartOfReplay, 42)) { jenkinsOidcToken(audience: 'sts.amazonaws.com') } == String.format(RESTART_REFUSED, 41)
  // The original was deleted since: its code cannot be vouched for.
  Harness gone = controller(number: 43, causes: [new Cause.UserIdCause('mallory'), new RestartDeclarativePipelineCause(null, 30, 'Deploy')])
  assert failure(gone) { withJenkinsOidc { } } == String.format(RESTART_REFUSED, 30)
}

tests['restart from stage: a restart of a build from SCM mints, and its tokens say restarted_from; with replays allowed they say replayed=true'] = {
  FakeRun fromScm = earlierBuild(40, [new Cause.UserIdCause('alice')])
  Harness h = restartOf(fromScm, 44)
  String jwt
  h.pipeline { withJenkinsOidc { jwt = idTokenInBuild(h) } }
  Map c = claimsOf(jwt)
  assert c.subMap(['job', 'build_number', 'replayed', 'restarted_from', 'triggered_by']) == [job: 'team/app/main', build_number: '44', replayed: 'false', restarted_from: '40', triggered_by: 'mallory']
  FakeRun replayed = earlierBuild(41, [new ReplayCause(40), new Cause.UserIdCause('mallory')])
  Harness allowed = restartOf(replayed, 45, [props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOW_REPLAY: 'true']])
  allowed.pipeline { withJenkinsOidc { jwt = idTokenInBuild(allowed) } }
  assert claimsOf(jwt).subMap(['replayed', 'restarted_from']) == [replayed: 'true', restarted_from: '41']
}

/** The Authorization header's client_id of each request the capture server got ('none' without one). */
List<String> clientIdsSeenBy(CaptureServer capture) {
  capture.requests.collect { Map r ->
    r.authorization?.startsWith('Basic ') ? new String(Base64.decoder.decode(r.authorization.substring(6)), 'UTF-8').split(':')[0] : 'none'
  }
}

tests['URL and credential are one pair: an allowed service never receives another credential\'s secret'] = {
  CaptureServer staging = new CaptureServer()
  try {
    String stagingSecret = 'jocs_' + 'S' * 43
    Map props = [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOW_HTTP: 'true', JENKINS_OIDC_ALLOWED_SERVICES: "${staging.url} staging-oidc".toString()]
    List extra = [new UsernamePasswordCredentialsImpl(CredentialsScope.SYSTEM, 'staging-oidc', '', 'ci-staging', stagingSecret)]
    // The production credential with the staging URL: not a pair.
    String mixed = failure(controller(props: props, extraCredentials: extra)) { withJenkinsOidc(serviceUrl: staging.url, credentialsId: 'jenkins-oidc-client') { } }
    assert mixed == "serviceUrl ${staging.url} with credentialsId jenkins-oidc-client is not allowed: a credential's secret goes only to the service an administrator paired it with. " +
                    "An administrator can list the pair in JENKINS_OIDC_ALLOWED_SERVICES as 'URL CREDENTIALS_ID'"
    // The staging credential with the production URL: not a pair either.
    assert failure(controller(props: props, extraCredentials: extra)) { withJenkinsOidc(serviceUrl: serviceUrl, credentialsId: 'staging-oidc') { } }.startsWith("serviceUrl ${serviceUrl} with credentialsId staging-oidc is not allowed")
    assert staging.requests == []
    // Naming the staging URL alone picks its pair: staging's secret goes to staging, the production secret never does.
    String answered = failure(controller(props: props, extraCredentials: extra)) { withJenkinsOidc(serviceUrl: staging.url) { } }
    assert answered == 'the token service answered the mint without a build request token'
    assert clientIdsSeenBy(staging) == ['ci-staging']
    assert !staging.requests.toString().contains(Base64.encoder.encodeToString("${clientId}:${clientSecret}".getBytes('UTF-8')))
  } finally {
    staging.stop()
  }
}

tests['the secret travels over https only, unless a lab says otherwise; the old separate allow-lists are refused'] = {
  String http = failure(controller(props: [JENKINS_OIDC_URL: System.getenv('JENKINS_OIDC_TEST_HTTP_URL')])) { withJenkinsOidc { } }
  assert http == "the token service URL '${System.getenv('JENKINS_OIDC_TEST_HTTP_URL')}' is plain http: the controller's client secret would cross the network in clear. Use https in JENKINS_OIDC_URL (JENKINS_OIDC_ALLOW_HTTP=true exists for test labs only)"
  String httpPair = failure(controller(props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOWED_SERVICES: 'http://oidc.lab.example.com lab-cred'])) { withJenkinsOidc { } }
  assert httpPair == "the token service URL 'http://oidc.lab.example.com' is plain http: the controller's client secret would cross the network in clear. Use https in JENKINS_OIDC_ALLOWED_SERVICES (JENKINS_OIDC_ALLOW_HTTP=true exists for test labs only)"
  String jwt
  Harness lab = controller(props: [JENKINS_OIDC_URL: System.getenv('JENKINS_OIDC_TEST_HTTP_URL'), JENKINS_OIDC_ALLOW_HTTP: 'true'])
  lab.pipeline { jwt = jenkinsOidcToken(audience: 'sts.amazonaws.com') }
  assert claimsOf(jwt).job == 'team/app/main'
  ['JENKINS_OIDC_ALLOWED_URLS', 'JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS'].each { String retired ->
    String msg = failure(controller(props: [JENKINS_OIDC_URL: serviceUrl, (retired): 'https://other.example.com'])) { withJenkinsOidc { } }
    assert msg == "the global property ${retired} is no longer read: with separate lists, any allowed URL received any allowed credential's secret. An administrator lists " +
                  "(URL, credential) pairs in JENKINS_OIDC_ALLOWED_SERVICES instead, one 'URL CREDENTIALS_ID' per line, and removes ${retired} (docs/jenkins.md#3-tell-the-controller-where-the-service-is)"
  }
}

/** A form body as a list of [name, value] pairs. */
List<List<String>> formOf(String body) {
  body.split('&').findAll { it }.collect { String pair -> pair.split('=', 2).collect { URLDecoder.decode(it, 'UTF-8') } }
}

tests['pipeline code cannot make the controller send junk: every request it sends is one of three fixed shapes, of the calling build'] = {
  CaptureServer service = new CaptureServer(), attacker = new CaptureServer()
  try {
    // The capture server is the configured service here: it sees everything the controller sends.
    Harness h = controller(job: 'reach/real-run', number: 7, props: [JENKINS_OIDC_URL: service.url, JENKINS_OIDC_ALLOW_HTTP: 'true'])
    Map sweep = hostileSweep(h, attacker, 200, CONTROLLER_SIDE)
    assert service.requests.size() > 20 && attacker.requests == []
    Set<String> facts = ['job', 'build_number', 'build_url', 'ref', 'repository', 'commit', 'triggered_by', 'replayed', 'restarted_from', 'pull_request'] as Set
    service.requests.each { Map r ->
      List<List<String>> form = formOf(r.body)
      Map<String, String> first = form.collectEntries { [(it[0]): it[1]] }
      if (r.method == 'GET') {
        assert r.path == '/agent/jenkins-oidc-agent.mjs.sha256' && r.body == ''
      } else if (r.path == '/token/revocation') {
        assert form*.get(0) == ['token', 'job', 'build_number'] && first.token ==~ TokenService.UUID && first.subMap(['job', 'build_number']) == [job: 'reach/real-run', build_number: '7']
      } else {
        assert r.path == '/token' && first.grant_type == TokenService.MINT
        assert first.subMap(['job', 'build_number', 'build_url']) == [job: 'reach/real-run', build_number: '7', build_url: "${jenkinsUrl}/job/reach/job/real-run/7/".toString()]
        assert (form*.get(0) as Set) - facts - ['grant_type', 'audience', 'requested_token_type'] == [] as Set
        // An audience is the caller's to narrow with, in the shape the library checks; the service decides whether this client has it.
        form.findAll { it[0] == 'audience' }.each { assert it[1] ==~ TokenService.AUDIENCE }
      }
    }
    // Every POST authenticated as this controller (the GETs are the agent's public checksum).
    assert clientIdsSeenBy(service).findAll { it != 'none' }.toSet() == ['ci-main'] as Set
    assert service.requests.findAll { it.authorization == null }.every { it.method == 'GET' }
    println "  junk: ${sweep.calls} hostile calls, ${service.requests.size()} requests to the service, each a mint, an ID token or a revocation of reach/real-run #7"
  } finally {
    service.stop()
    attacker.stop()
  }
}

tests['a request token lives the administrator\'s lifetime, never a step option\'s'] = {
  Harness h = controller(props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_REQUEST_TOKEN_TTL: '30m'])
  assert failure(h) { withJenkinsOidc(ttl: 86400) { } } == "withJenkinsOidc: unknown option ttl; the options are audience, serviceUrl, credentialsId; the request token's lifetime is the administrator's (global property JENKINS_OIDC_REQUEST_TOKEN_TTL), not a step option"
  assert attempt(h) { TokenService.mintForCurrentBuild([ttl: 86400]) } == "JenkinsOidcException: mint: unknown option ttl; the options are audience, serviceUrl, credentialsId; the request token's lifetime is the administrator's (global property JENKINS_OIDC_REQUEST_TOKEN_TTL), not a step option"
  Map minted = attempt(h) { TokenService.mintForCurrentBuild([:]) } as Map
  assert minted.expiresIn == 1800
  assert attempt(h) { TokenService.revokeForCurrentBuild([:], minted.id as String) } == true
  String bad = failure(controller(props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_REQUEST_TOKEN_TTL: 'forever'])) { withJenkinsOidc { } }
  assert bad == "JENKINS_OIDC_REQUEST_TOKEN_TTL must be a duration such as 3600, 90m, 6h or 1d, got 'forever'"
}

tests['a token file the build overwrote or deleted is revoked all the same when the block ends'] = {
  Harness h = controller()
  List<String> tokens = []
  h.pipeline {
    withJenkinsOidc {
      File f = new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String)
      tokens << f.text
      f.text = 'jort_' + 'x' * 43
    }
    withJenkinsOidc {
      File f = new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE as String)
      tokens << f.text
      f.parentFile.deleteDir()
    }
  }
  assert tokens.size() == 2
  tokens.each { assert exchange(serviceUrl, it).body.error_description == 'the build request token has been revoked' }
  assert !h.logText().contains('could not revoke')
}

tests['multibranch facts come from the branch source, not from what a checkout in the Jenkinsfile adds'] = {
  Harness h = controller()
  String jwt
  h.pipeline {
    checkout(url: 'https://evil.example.com/other.git', commit: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef')
    withJenkinsOidc { jwt = idTokenInBuild(h) }
  }
  Map c = claimsOf(jwt)
  assert c.commit == '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c' && c.repository == 'https://git.example.com/team/app'
  // A job without a branch source: a checkout gives it no commit or repository claim at all.
  Harness plain = controller(job: 'team/freestyle-ish', head: false, source: false)
  plain.pipeline {
    checkout(url: 'https://git.example.com/team/app.git', commit: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef')
    withJenkinsOidc { jwt = idTokenInBuild(plain) }
  }
  c = claimsOf(jwt)
  assert c.job == 'team/freestyle-ish' && !c.containsKey('commit') && !c.containsKey('repository') && !c.containsKey('ref')
}

tests['no step ever gets the request token, the client secret or an AWS key as an argument, in any mode'] = {
  Harness h = controller(buildEnv: awsAgentEnv)
  List<String> secrets = [clientSecret]
  h.pipeline {
    withJenkinsOidc { secrets << new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE).text; idTokenInBuild(h) }
    jenkinsOidcToken(audience: 'sts.amazonaws.com') { String jwt -> sh 'true' }
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1', useNode: false) { secrets << new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE).text }
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1') { secrets << new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE).text }
    withAwsOidc(roleArn: deployRole, region: 'eu-west-1', mode: 'credentials') {
      secrets << new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE).text
      secrets.addAll(new File(env.AWS_SHARED_CREDENTIALS_FILE).text.readLines().findAll { it.contains(' = ') }.collect { it.split(' = ')[1] })
    }
  }
  assert secrets.size() == 1 + 4 + 3 && secrets.every { it && it.length() >= 16 }
  assert h.steps*.step.toSet().containsAll(['withJenkinsOidc', 'jenkinsOidcToken', 'withAwsOidc', 'getContext', 'withEnv', 'sh', 'writeFile'])
  String recorded = h.stepArgumentsText()
  secrets.each { assert !recorded.contains(it) && !h.logText().contains(it) }
  // Every token file was written into a folder only its owner could enter.
  assert FilePath.writes.findAll { it.path.endsWith('/request-token') }.every { it.folderMode == 'rwx------' }
}

tests['the curl refresher never puts the request token on a command line'] = {
  // A curl that records its arguments (what `ps` shows every user of the agent), then runs the real one.
  File bin = File.createTempDir('jenkins-oidc-bin', '')
  File argv = new File(bin, 'argv.log')
  new File(bin, 'curl').with {
    text = "#!/bin/sh\nprintf '%s\\n' \"\$*\" >> '${argv}'\nexec /usr/bin/curl \"\$@\"\n"
    setExecutable(true)
  }
  Harness h = controller(buildEnv: [PATH: "${bin}:${System.getenv('PATH')}".toString()])
  String token, webIdentityFile
  h.pipeline {
    withAwsOidc(roleArn: deployRole, useNode: false) {
      token = new File(env.JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE).text
      webIdentityFile = env.AWS_WEB_IDENTITY_TOKEN_FILE
    }
  }
  List<String> calls = argv.readLines()
  assert calls == ["-fsS --max-time 20 -H @- -G --data-urlencode audience=sts.amazonaws.com ${serviceUrl}/id-token?api-version=1 -o ${webIdentityFile}.json".toString()]
  assert !argv.text.contains(token)
}

// ---- The attacks of issue 8, each by name -------------------------------------------

/** Runs Jenkinsfile code as this build; returns what it returned or the message it failed with. */
Object attempt(Harness h, Closure attack) {
  try {
    return h.pipeline(attack)
  } catch (Throwable t) {
    return "${t.class.simpleName}: ${t.message}".toString()
  }
}

tests['attack: ClientCredentials.lookup(id).secret() — no class or member hands out the client secret'] = {
  Harness h = controller()
  assert attempt(h) { Class.forName('io.jenkinsoidc.ClientCredentials') } == 'ClassNotFoundException: io.jenkinsoidc.ClientCredentials'
  Map minted = attempt(h) { TokenService.mintForCurrentBuild([credentialsId: 'jenkins-oidc-client']) } as Map
  assert minted.keySet() == ['token', 'id', 'expiresIn', 'requestUrl', 'warnings'] as Set && !minted.toString().contains(clientSecret)
  assert attempt(h) { TokenService.revokeForCurrentBuild([:], minted.id as String) } == true
}

tests['attack: new TokenService(url).mint(creds, forged facts, ...) — facts and URL cannot be chosen'] = {
  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller()
    assert (attempt(h) { new TokenService(capture.url) } as String).startsWith('GroovyRuntimeException: Could not find matching constructor for: io.jenkinsoidc.TokenService(java.lang.String)')
    Map forged = [job: 'prod/deploy', build_number: '1', build_url: "${jenkinsUrl}/job/prod/job/deploy/1/".toString(), replayed: 'false',
                  facts: [job: 'prod/deploy'], run: new FakeRun(parent: new FakeJob(fullName: 'prod/deploy'), number: 1, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/1/")]
    // Facts are no options at all: naming them is refused, and they come from the Run either way.
    assert attempt(h) { TokenService.mintForCurrentBuild(forged) } == 'JenkinsOidcException: mint: unknown option job; the options are audience, serviceUrl, credentialsId'
    Map minted = attempt(h) { TokenService.mintForCurrentBuild([audience: 'sts.amazonaws.com']) } as Map
    Map c = claimsOf(exchange(serviceUrl, minted.token as String).body.access_token as String)
    assert c.job == 'team/app/main' && c.build_number == '42' && c.build_url == "${jenkinsUrl}/job/team/job/app/job/main/42/"
    assert attempt(h) { TokenService.revokeForCurrentBuild([:], minted.id as String) } == true
    assert attempt(h) { TokenService.mintForCurrentBuild([serviceUrl: capture.url]) } == "JenkinsOidcException: serviceUrl ${capture.url} is not allowed: a credential's secret goes only to the service an administrator paired it with. An administrator can list the pair in JENKINS_OIDC_ALLOWED_SERVICES as 'URL CREDENTIALS_ID'"
    assert capture.requests == []
  } finally {
    capture.stop()
  }
}

tests['attack: new Settings(attacker URL, id) then revoke — no member sends anything to a URL its caller chose'] = {
  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller()
    assert attempt(h) { Class.forName('io.jenkinsoidc.Settings') } == 'ClassNotFoundException: io.jenkinsoidc.Settings'
    assert attempt(h) { Class.forName('io.jenkinsoidc.Controller') } == 'ClassNotFoundException: io.jenkinsoidc.Controller'
    String refused = "JenkinsOidcException: serviceUrl ${capture.url} is not allowed: a credential's secret goes only to the service an administrator paired it with. An administrator can list the pair in JENKINS_OIDC_ALLOWED_SERVICES as 'URL CREDENTIALS_ID'"
    assert attempt(h) { ControllerSettings.forStep([serviceUrl: capture.url]) } == refused
    assert attempt(h) { TokenService.revokeForCurrentBuild([serviceUrl: capture.url], UUID.randomUUID().toString()) } == false
    assert (attempt(h) { TokenService.exchange([serviceUrl: capture.url], 'jort_x', 'sts.amazonaws.com') } as String).startsWith('MissingMethodException: No signature of method: static io.jenkinsoidc.TokenService.exchange()')
    assert attempt(h) { TokenService.agentSha256([serviceUrl: capture.url]) } == refused
    assert attempt(h) { RequestTokenFile.remove([serviceUrl: capture.url], new FilePath(h.workspace), h.workspace.path, '0' * 32, UUID.randomUUID().toString()) } == false
    assert capture.requests == []
  } finally {
    capture.stop()
  }
}

tests['attack: TokenService.post as an HTTP client on the controller network — no member sends what its caller chose'] = {
  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller()
    String host = capture.url - 'http://'
    assert (attempt(h) { TokenService.publicCall([:], "@${host}/steal", [['a', 'b']], 'x') } as String).startsWith('MissingMethodException: No signature of method: static io.jenkinsoidc.TokenService.publicCall()')
    assert (attempt(h) { TokenService.post('/token', [], null, 'x') } as String).startsWith('MissingMethodException: No signature of method: static io.jenkinsoidc.TokenService.post()')
    assert attempt(h) { TokenService.asController('exchange', [:], null) } == 'JenkinsOidcException: no such operation: exchange'
    assert attempt(h) { TokenService.asController('revoke', [:], 'jort_junk') } == 'JenkinsOidcException: not a request token id'
    assert attempt(h) { TokenService.asController('mint', [audience: 'a b,c'], null) } == "JenkinsOidcException: audience 'a b,c' is not an audience: 1-255 printable ASCII characters without spaces or commas"
    assert capture.requests == []
  } finally {
    capture.stop()
  }
}

tests['attack: BuildFacts.firstProperty(obj, names) as a getter gadget — facts take no argument'] = {
  Harness h = controller()
  assert (attempt(h) { BuildFacts.firstProperty(Jenkins.get(), ['pluginManager']) } as String).startsWith('MissingMethodException: No signature of method: static io.jenkinsoidc.BuildFacts.firstProperty()')
  assert (attempt(h) { BuildFacts.ofCurrentBuild(new FakeRun(parent: new FakeJob(fullName: 'prod/deploy'), number: 1)) } as String).startsWith('MissingMethodException: No signature of method: static io.jenkinsoidc.BuildFacts.ofCurrentBuild()')
  assert attempt(h) { BuildFacts.ofCurrentBuild() } == [job: 'team/app/main', build_number: '42', build_url: "${jenkinsUrl}/job/team/job/app/job/main/42/".toString(),
                                                         ref: 'refs/heads/main', repository: 'https://git.example.com/team/app',
                                                         commit: '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c', triggered_by: 'alice', replayed: 'false']
}

tests['outside a running Pipeline there are no facts to mint with'] = {
  controller()
  try {
    BuildFacts.ofCurrentBuild()
    assert false
  } catch (JenkinsOidcException e) {
    assert e.message == 'jenkins-oidc: no running Pipeline build on this thread; the steps work only inside a Pipeline'
  }
}

// ---- Reach: every member of the library, as a Jenkinsfile could call it ---------------

/**
 * The library's whole surface, member by member, with why each is harmless when
 * Jenkinsfile code calls it with any arguments. A new member fails the reach test
 * until it is listed here. Groovy's plumbing (LibrarySurface.plumbing) is one
 * entry: meta-class access, call-site caches and dispatch helpers that only lead
 * to the members below; every library member is static or belongs to a script or
 * closure object the build itself creates, so a per-object meta-class changes
 * nothing the library does, and MetaClass's own methods are outside the library.
 */
@Field Map<String, String> REACH = [
  'io.jenkinsoidc.AgentCommands#<init>()': 'an object without state',
  'io.jenkinsoidc.AgentCommands#fetchOnUnix(Object, String, Map, String)': "runs steps of the script it is given (isUnix, sh, writeFile, libraryResource, env): the caller's own, which it may run itself; the only controller call is agentSha256",
  'io.jenkinsoidc.AgentCommands#folderOf(String, String)': 'string function', 'io.jenkinsoidc.AgentCommands#folderOfAnyAgent(String, String)': 'string function',
  'io.jenkinsoidc.AgentCommands#shLine(List)': 'string function', 'io.jenkinsoidc.AgentCommands#powershellLine(List)': 'string function',
  'io.jenkinsoidc.AgentCommands#variables(String, String, List)': 'string function', 'io.jenkinsoidc.AgentCommands#assignments(Map)': 'string function over the caller\'s map',
  'io.jenkinsoidc.BuildFacts#<init>()': 'an object without state',
  'io.jenkinsoidc.BuildFacts#ofCurrentBuild()': 'no argument: the facts of the build running the caller, which describe the caller itself',
  'io.jenkinsoidc.BuildFacts#getRESTART_CAUSE()': 'a class name', 'io.jenkinsoidc.BuildFacts.RESTART_CAUSE': 'a final class name',
  'io.jenkinsoidc.BuildFacts#getMAX_RESTART_DEPTH()': 'a constant', 'io.jenkinsoidc.BuildFacts.MAX_RESTART_DEPTH': 'a final constant',
  'io.jenkinsoidc.ControllerSettings#<init>()': 'an object without state',
  'io.jenkinsoidc.ControllerSettings#forStep(Map)': "returns the admin's default (URL, credential id) pair, or an allowed pair the options name; sends nothing",
  'io.jenkinsoidc.ControllerSettings#chosen(List, String, String)': 'picks from the pairs it is given; sends and reads nothing',
  'io.jenkinsoidc.ControllerSettings#checkedUrl(String, String, boolean)': 'a pure function of its strings',
  'io.jenkinsoidc.ControllerSettings#ttl(String)': 'a pure function of its string',
  'io.jenkinsoidc.ControllerSettings#getDEFAULT_CREDENTIALS_ID()': 'a constant', 'io.jenkinsoidc.ControllerSettings.DEFAULT_CREDENTIALS_ID': 'a final constant',
  'io.jenkinsoidc.ControllerSettings#getDOCS()': 'a constant', 'io.jenkinsoidc.ControllerSettings.DOCS': 'a final constant',
  'io.jenkinsoidc.JenkinsOidcException#<init>(String)': 'an exception with the caller\'s own message',
  'io.jenkinsoidc.LibraryPin#<init>()': 'an object without state',
  'io.jenkinsoidc.LibraryPin#checkCurrentBuild()': "no argument: reads the library configuration and the calling build's loaded libraries, throws or returns nothing",
  'io.jenkinsoidc.LibraryPin#getDOCS()': 'a constant', 'io.jenkinsoidc.LibraryPin.DOCS': 'a final constant',
  'io.jenkinsoidc.Masking#<init>()': 'an object without state',
  'io.jenkinsoidc.Masking#available()': 'whether a plugin is installed',
  'io.jenkinsoidc.RequestTokenFile#<init>()': 'an object without state',
  'io.jenkinsoidc.RequestTokenFile#create(Map, FilePath, String)': "writes the caller's own request token beside a FilePath the caller already controls, or one of its parents (FilePath is final: only a real one, e.g. getContext(hudson.FilePath)); returns paths and the token's id, never the token",
  'io.jenkinsoidc.RequestTokenFile#remove(Map, FilePath, String, String, String)': "revokes by id as the controller (only a token of the calling build: the service checks), deletes only jenkins-oidc-<32 hex> beside the caller's own FilePath or a parent of it; reads nothing from the agent",
  'io.jenkinsoidc.RequestTokenFile#tokenFolder(FilePath, String, String)': "names a folder beside the caller's own FilePath or one of its parents; touches nothing",
  'io.jenkinsoidc.StepOptions#<init>()': 'an object without state',
  'io.jenkinsoidc.StepOptions#snapshot(String, Map, List)': "walks the caller's map once into plain strings",
  'io.jenkinsoidc.StepOptions#snapshot(String, Map, List, List)': "walks the caller's map once into plain strings",
  'io.jenkinsoidc.StepOptions#plain(String, String, Object)': 'renders a String, GString, Number or Boolean once; refuses anything else without calling it',
  'io.jenkinsoidc.StepOptions#texts(Map, String)': 'reads strings from the map it is given',
  'io.jenkinsoidc.TokenService#<init>()': 'an object without state',
  'io.jenkinsoidc.TokenService#mintForCurrentBuild(Map)': "through asController: the calling build's own request token, living the admin's lifetime",
  'io.jenkinsoidc.TokenService#idTokenForCurrentBuild(Map)': "through asController: the calling build's own ID token",
  'io.jenkinsoidc.TokenService#revokeForCurrentBuild(Map, String)': 'through asController: revokes a token of the calling build, or nothing',
  'io.jenkinsoidc.TokenService#asController(String, Map, String)': "the one reader of the client secret and the one sender: three fixed operations whose every field comes from the admin's settings, the calling build's Run or a value it checks; returns the service's answer for the calling build",
  'io.jenkinsoidc.TokenService#agentSha256(Map)': "reads a public checksum from a fixed path of an allowed URL",
  'io.jenkinsoidc.TokenService#answerOf(int, String, String, String)': 'parses the strings it is given',
  'io.jenkinsoidc.TokenService#warningsOf(Map)': 'copies strings out of the map it is given',
  'io.jenkinsoidc.TokenService#formBody(List)': 'encodes the strings it is given',
  'io.jenkinsoidc.TokenService#getMINT()': 'a public protocol constant', 'io.jenkinsoidc.TokenService.MINT': 'a final public protocol constant',
  'io.jenkinsoidc.TokenService#getID_TOKEN_TYPE()': 'a public protocol constant', 'io.jenkinsoidc.TokenService.ID_TOKEN_TYPE': 'a final public protocol constant',
  'io.jenkinsoidc.TokenService#getUUID()': 'a pattern', 'io.jenkinsoidc.TokenService.UUID': 'a final pattern',
  'io.jenkinsoidc.TokenService#getAUDIENCE()': 'a pattern', 'io.jenkinsoidc.TokenService.AUDIENCE': 'a final pattern',
  'io.jenkinsoidc.TokenService#getOPTIONS()': 'an immutable list of option names', 'io.jenkinsoidc.TokenService.OPTIONS': 'a final, immutable list',
  'io.jenkinsoidc.TokenService#getCONNECT_TIMEOUT_MS()': 'a constant', 'io.jenkinsoidc.TokenService.CONNECT_TIMEOUT_MS': 'a final constant',
  'io.jenkinsoidc.TokenService#getREAD_TIMEOUT_MS()': 'a constant', 'io.jenkinsoidc.TokenService.READ_TIMEOUT_MS': 'a final constant',
  // vars/: the steps themselves, and the closures they pass to withEnv/wrap/withJenkinsOidc.
  'jenkinsOidcToken#<init>()': 'the step script', 'jenkinsOidcToken#<init>(Binding)': 'the step script, with the caller\'s binding',
  'jenkinsOidcToken#main(String[])': 'runs the script body, which defines only call()', 'jenkinsOidcToken#run()': 'the script body: nothing',
  'jenkinsOidcToken#call()': 'the step', 'jenkinsOidcToken#call(Map)': 'the step', 'jenkinsOidcToken#call(Map, Closure)': 'the step',
  'jenkinsOidcToken$_call_closure1#<init>(Object, Object, Reference, Reference)': 'a block calling the caller\'s closure with the caller\'s value',
  'jenkinsOidcToken$_call_closure1#doCall()': 'calls the captured closure', 'jenkinsOidcToken$_call_closure1#doCall(Object)': 'calls the captured closure',
  'jenkinsOidcToken$_call_closure1#getBody()': "the captured closure: the caller's own", 'jenkinsOidcToken$_call_closure1.body': "the caller's own closure",
  'jenkinsOidcToken$_call_closure1#getJwt()': "the build's own ID token, only in the instance the step makes and hands to wrap", 'jenkinsOidcToken$_call_closure1.jwt': 'as getJwt()',
  'withAwsOidc#<init>()': 'the step script', 'withAwsOidc#<init>(Binding)': 'the step script, with the caller\'s binding',
  'withAwsOidc#main(String[])': 'runs the script body, which defines only methods', 'withAwsOidc#run()': 'the script body: nothing',
  'withAwsOidc#call(Map, Closure)': 'the step',
  'withAwsOidc#viaAgent(Map, String, String, String, boolean, Map)': "runs steps the caller may run itself (writeFile, sh); the only controller call is agentSha256",
  'withAwsOidc#viaCurl(Map, String, String)': 'runs steps the caller may run itself (writeFile, sh)',
  'withAwsOidc#ambientCheck(List)': 'string function', 'withAwsOidc#psAmbientCheck(List)': 'string function',
  'withAwsOidc$_call_closure1#<init>(Object, Object, Reference, Reference, Reference, Reference, Reference)': 'the withJenkinsOidc block, from the caller\'s own values',
  'withAwsOidc$_call_closure1#doCall()': 'runs the steps of withAwsOidc with the captured options', 'withAwsOidc$_call_closure1#doCall(Object)': 'as doCall()',
  'withAwsOidc$_call_closure1#getArgs()': "the step's options", 'withAwsOidc$_call_closure1.args': "the step's options",
  'withAwsOidc$_call_closure1#getMode()': "the step's mode", 'withAwsOidc$_call_closure1.mode': "the step's mode",
  'withAwsOidc$_call_closure1#getAudience()': "the step's audience", 'withAwsOidc$_call_closure1.audience': "the step's audience",
  'withAwsOidc$_call_closure1#getOidcArgs()': "the step's withJenkinsOidc options", 'withAwsOidc$_call_closure1.oidcArgs': "the step's withJenkinsOidc options",
  'withAwsOidc$_call_closure1#getBody()': "the caller's own closure", 'withAwsOidc$_call_closure1.body': "the caller's own closure",
  'withAwsOidc$_call_closure1$_closure2#<init>(Object, Object, Reference, Reference, Reference)': 'the withEnv block, from the caller\'s own values',
  'withAwsOidc$_call_closure1$_closure2#doCall()': 'runs a sh the caller may run itself, then calls the captured closure',
  'withAwsOidc$_call_closure1$_closure2#getUnix()': 'whether the agent is Unix', 'withAwsOidc$_call_closure1$_closure2.unix': 'whether the agent is Unix',
  'withAwsOidc$_call_closure1$_closure2#getCleared()': 'variable names', 'withAwsOidc$_call_closure1$_closure2.cleared': 'variable names',
  'withAwsOidc$_call_closure1$_closure2#doCall(Object)': 'calls the captured closure', 'withAwsOidc$_call_closure1$_closure2#getBody()': "the caller's own closure",
  'withAwsOidc$_call_closure1$_closure2.body': "the caller's own closure",
  'withKubernetesOidc#<init>()': 'the step script', 'withKubernetesOidc#<init>(Binding)': 'the step script, with the caller\'s binding',
  'withKubernetesOidc#main(String[])': 'runs the script body, which defines only methods', 'withKubernetesOidc#run()': 'the script body: nothing',
  'withKubernetesOidc#call(Map, Closure)': 'the step: inside withJenkinsOidc, steps the caller may run itself (writeFile, sh, withEnv); the only controller call is agentSha256',
  'withKubernetesOidc$_call_closure1#<init>(Object, Object, Reference, Reference, Reference, Reference)': 'the withJenkinsOidc block, from the caller\'s own values',
  'withKubernetesOidc$_call_closure1#doCall()': 'runs the steps of withKubernetesOidc with the captured options', 'withKubernetesOidc$_call_closure1#doCall(Object)': 'as doCall()',
  'withKubernetesOidc$_call_closure1#getArgs()': "the step's options", 'withKubernetesOidc$_call_closure1.args': "the step's options",
  'withKubernetesOidc$_call_closure1#getAudience()': "the step's audience", 'withKubernetesOidc$_call_closure1.audience': "the step's audience",
  'withKubernetesOidc$_call_closure1#getOidcArgs()': "the step's withJenkinsOidc options", 'withKubernetesOidc$_call_closure1.oidcArgs': "the step's withJenkinsOidc options",
  'withKubernetesOidc$_call_closure1#getBody()': "the caller's own closure", 'withKubernetesOidc$_call_closure1.body': "the caller's own closure",
  'withKubernetesOidc$_call_closure1$_closure2#<init>(Object, Object, Reference)': 'the withEnv block', 'withKubernetesOidc$_call_closure1$_closure2#doCall()': 'calls the captured closure',
  'withKubernetesOidc$_call_closure1$_closure2#doCall(Object)': 'calls the captured closure', 'withKubernetesOidc$_call_closure1$_closure2#getBody()': "the caller's own closure",
  'withKubernetesOidc$_call_closure1$_closure2.body': "the caller's own closure",
  'withVaultOidc#<init>()': 'the step script', 'withVaultOidc#<init>(Binding)': 'the step script, with the caller\'s binding',
  'withVaultOidc#main(String[])': 'runs the script body, which defines only methods', 'withVaultOidc#run()': 'the script body: nothing',
  'withVaultOidc#call(Map, Closure)': 'the step: inside withJenkinsOidc, steps the caller may run itself (writeFile, sh, withEnv); the only controller call is agentSha256; the Vault token stays in a file on the agent',
  'withVaultOidc$_call_closure1#<init>(Object, Object, Reference, Reference, Reference, Reference)': 'the withJenkinsOidc block, from the caller\'s own values',
  'withVaultOidc$_call_closure1#doCall()': 'runs the steps of withVaultOidc with the captured options', 'withVaultOidc$_call_closure1#doCall(Object)': 'as doCall()',
  'withVaultOidc$_call_closure1#getArgs()': "the step's options", 'withVaultOidc$_call_closure1.args': "the step's options",
  'withVaultOidc$_call_closure1#getAudience()': "the step's audience", 'withVaultOidc$_call_closure1.audience': "the step's audience",
  'withVaultOidc$_call_closure1#getOidcArgs()': "the step's withJenkinsOidc options", 'withVaultOidc$_call_closure1.oidcArgs': "the step's withJenkinsOidc options",
  'withVaultOidc$_call_closure1#getBody()': "the caller's own closure", 'withVaultOidc$_call_closure1.body': "the caller's own closure",
  'withVaultOidc$_call_closure1$_closure2#<init>(Object, Object, Reference)': 'the withEnv block', 'withVaultOidc$_call_closure1$_closure2#doCall()': 'calls the captured closure',
  'withVaultOidc$_call_closure1$_closure2#doCall(Object)': 'calls the captured closure', 'withVaultOidc$_call_closure1$_closure2#getBody()': "the caller's own closure",
  'withVaultOidc$_call_closure1$_closure2.body': "the caller's own closure",
  'withAzureOidc#<init>()': 'the step script', 'withAzureOidc#<init>(Binding)': 'the step script, with the caller\'s binding',
  'withAzureOidc#main(String[])': 'runs the script body, which defines only methods', 'withAzureOidc#run()': 'the script body: nothing',
  'withAzureOidc#call(Map, Closure)': 'the step: inside withJenkinsOidc, steps the caller may run itself (writeFile, sh, withEnv); the only controller call is agentSha256; the ID token stays in a file on the agent',
  'withAzureOidc$_call_closure1#<init>(Object, Object, Reference, Reference, Reference, Reference)': 'the withJenkinsOidc block, from the caller\'s own values',
  'withAzureOidc$_call_closure1#doCall()': 'runs the steps of withAzureOidc with the captured options', 'withAzureOidc$_call_closure1#doCall(Object)': 'as doCall()',
  'withAzureOidc$_call_closure1#getArgs()': "the step's options", 'withAzureOidc$_call_closure1.args': "the step's options",
  'withAzureOidc$_call_closure1#getAudience()': "the step's audience", 'withAzureOidc$_call_closure1.audience': "the step's audience",
  'withAzureOidc$_call_closure1#getOidcArgs()': "the step's withJenkinsOidc options", 'withAzureOidc$_call_closure1.oidcArgs': "the step's withJenkinsOidc options",
  'withAzureOidc$_call_closure1#getBody()': "the caller's own closure", 'withAzureOidc$_call_closure1.body': "the caller's own closure",
  'withAzureOidc$_call_closure1$_closure2#<init>(Object, Object, Reference)': 'the withEnv block', 'withAzureOidc$_call_closure1$_closure2#doCall()': 'calls the captured closure',
  'withAzureOidc$_call_closure1$_closure2#doCall(Object)': 'calls the captured closure', 'withAzureOidc$_call_closure1$_closure2#getBody()': "the caller's own closure",
  'withAzureOidc$_call_closure1$_closure2.body': "the caller's own closure",
  'withGcpOidc#<init>()': 'the step script', 'withGcpOidc#<init>(Binding)': 'the step script, with the caller\'s binding',
  'withGcpOidc#main(String[])': 'runs the script body, which defines only methods', 'withGcpOidc#run()': 'the script body: nothing',
  'withGcpOidc#call(Map, Closure)': 'the step: inside withJenkinsOidc, steps the caller may run itself (writeFile, sh, withEnv); the only controller call is agentSha256; the credential file holds no token',
  'withGcpOidc$_call_closure1#<init>(Object, Object, Reference, Reference, Reference, Reference, Reference)': 'the withJenkinsOidc block, from the caller\'s own values',
  'withGcpOidc$_call_closure1#doCall()': 'runs the steps of withGcpOidc with the captured options', 'withGcpOidc$_call_closure1#doCall(Object)': 'as doCall()',
  'withGcpOidc$_call_closure1#getArgs()': "the step's options", 'withGcpOidc$_call_closure1.args': "the step's options",
  'withGcpOidc$_call_closure1#getProvider()': "the step's provider", 'withGcpOidc$_call_closure1.provider': "the step's provider",
  'withGcpOidc$_call_closure1#getAudience()': "the step's audience", 'withGcpOidc$_call_closure1.audience': "the step's audience",
  'withGcpOidc$_call_closure1#getOidcArgs()': "the step's withJenkinsOidc options", 'withGcpOidc$_call_closure1.oidcArgs': "the step's withJenkinsOidc options",
  'withGcpOidc$_call_closure1#getBody()': "the caller's own closure", 'withGcpOidc$_call_closure1.body': "the caller's own closure",
  'withGcpOidc$_call_closure1$_closure2#<init>(Object, Object, Reference)': 'the withEnv block', 'withGcpOidc$_call_closure1$_closure2#doCall()': 'calls the captured closure',
  'withGcpOidc$_call_closure1$_closure2#doCall(Object)': 'calls the captured closure', 'withGcpOidc$_call_closure1$_closure2#getBody()': "the caller's own closure",
  'withGcpOidc$_call_closure1$_closure2.body': "the caller's own closure",
  'withJenkinsOidc#<init>()': 'the step script', 'withJenkinsOidc#<init>(Binding)': 'the step script, with the caller\'s binding',
  'withJenkinsOidc#main(String[])': 'runs the script body, which defines only call()', 'withJenkinsOidc#run()': 'the script body: nothing',
  'withJenkinsOidc#call(Closure)': 'the step', 'withJenkinsOidc#call(Map, Closure)': 'the step',
  'withJenkinsOidc$_call_closure1#<init>(Object, Object, Reference)': 'the withEnv block', 'withJenkinsOidc$_call_closure1#doCall()': 'calls the captured closure',
  'withJenkinsOidc$_call_closure1#doCall(Object)': 'calls the captured closure', 'withJenkinsOidc$_call_closure1#getBody()': "the caller's own closure",
  'withJenkinsOidc$_call_closure1.body': "the caller's own closure",
]

/** A Run-like class a Jenkinsfile could define. */
class ScriptDefinedRun {
  Map parent = [fullName: 'prod/deploy']
  int number = 999
  String absoluteUrl = 'https://jenkins.example.com/job/prod/job/deploy/999/'
  List causes = []
}

/** The messages of an exception, its causes and the exceptions suppressed in it. */
String throwableText(Throwable t, Set seen, boolean first = true) {
  if (t == null || (!first && !seen.add(t))) return ''
  return ([t.toString()] + t.suppressed.collect { throwableText(it, seen, false) } + [throwableText(t.cause, seen, false)]).join(' ')
}

/** Everything readable from a value: strings, collections, exceptions, and the fields of library objects. */
String reachableText(Object o, Set<Class> library, int depth = 4, Set seen = Collections.newSetFromMap(new IdentityHashMap())) {
  if (o == null || depth < 0 || !seen.add(o)) return ''
  if (o instanceof CharSequence || o instanceof Number || o instanceof Boolean) return o.toString()
  if (o instanceof Map) return ((Map) o).collect { k, v -> reachableText(k, library, depth - 1, seen) + '=' + reachableText(v, library, depth - 1, seen) }.join(' ')
  if (o instanceof Collection || o.getClass().isArray()) return (o as List).collect { reachableText(it, library, depth - 1, seen) }.join(' ')
  // An exception carries text in its messages (its own, its causes', the suppressed ones), as printStackTrace
  // shows them; its frames name only classes and lines. Printing whole Groovy stacks for thousands of refused
  // calls was a hot spot of the sweeps.
  if (o instanceof Throwable) return throwableText((Throwable) o, seen)
  if (o instanceof Reference) return reachableText(((Reference) o).get(), library, depth - 1, seen)
  String out = o.toString()
  for (Class c = o.getClass(); c != null && (library.contains(c) || Closure.isAssignableFrom(c)) && c != Closure; c = c.superclass) {
    c.declaredFields.findAll { !java.lang.reflect.Modifier.isStatic(it.modifiers) }.each { f ->
      f.accessible = true
      out += ' ' + reachableText(f.get(o), library, depth - 1, seen)
    }
  }
  return out
}

/**
 * A Map a Jenkinsfile could pass: it records every method the library calls
 * on it, and answers differently after its first walk (first the admin's own
 * service URL, then the capture server's), so that a value checked on one read
 * and used on another would show up as a request to the capture server.
 */
class HostileMap extends LinkedHashMap {
  // (Read its fields as hm.@walks: hm.walks on a Map is hm.get('walks').)
  final List<String> calls = Collections.synchronizedList([])
  final Map first, later
  int walks = 0
  HostileMap(Map first, Map later) { super(first); this.first = first; this.later = later }
  Set entrySet() { calls << 'entrySet'; return new LinkedHashMap(walks++ == 0 ? first : later).entrySet() }
  Object get(Object k) { calls << "get(${k})".toString(); return (walks == 0 ? first : later).get(k) }
  boolean containsKey(Object k) { calls << "containsKey(${k})".toString(); return (walks == 0 ? first : later).containsKey(k) }
  Set keySet() { calls << 'keySet'; return (walks == 0 ? first : later).keySet() }
  int size() { calls << 'size'; return first.size() }
  boolean isEmpty() { calls << 'isEmpty'; return first.isEmpty() }
}

/** A GString that renders the allowed URL once, then the capture server's; counts its renderings. */
class FlippingText {
  int renders = 0
  GString of(String first, String later) { return "${-> renders++ == 0 ? first : later}" }
}

/** A value made anew for every call (hostile objects keep state). */
class Fresh {
  final Closure make
  Fresh(Closure make) { this.make = make }
}

/**
 * Calls every member of the library with hostile arguments in combination,
 * as a Jenkinsfile could (sandboxed code reaches private members too), on the
 * build `h` runs. Returns what the calls made reachable, and the hostile
 * objects' records.
 */
Map hostileSweep(Harness h, CaptureServer capture, int wholeProductUpTo, Closure<Boolean> only = { String signature -> true }) {
  LibrarySurface surface = new LibrarySurface(root, this.class.classLoader)
  Set<Class> library = surface.classes as Set
  List<Map> members = surface.members()
  File elsewhere = File.createTempDir('jenkins-oidc-elsewhere', '')
  FakeRun forgedRun = new FakeRun(parent: new FakeJob(fullName: 'prod/deploy'), number: 999, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/999/")
  Map mapRun = [parent: [fullName: 'prod/deploy'], number: 999, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/999/".toString()]
  Expando expandoRun = new Expando(parent: new Expando(fullName: 'prod/deploy'), number: 999, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/999/")
  Map forgedFacts = [job: 'prod/deploy', build_number: '999', build_url: "${jenkinsUrl}/job/prod/job/deploy/999/".toString(), replayed: 'false',
                     run: forgedRun, facts: mapRun, rawBuild: expandoRun, ttl: 86400, audience: ['sts.amazonaws.com']]
  List<HostileMap> hostileMaps = []
  List<FlippingText> flips = []
  Closure hostileMap = { Map first, Map later -> HostileMap m = new HostileMap(first, later); hostileMaps << m; m }
  Closure flipping = { FlippingText f = new FlippingText(); flips << f; f.of(serviceUrl, capture.url) }
  Map<Class, List> pools = [
    (String)   : ['prod-database', capture.url, "${capture.url}/token".toString(), "@${capture.url - 'http://'}/x".toString(), '0' * 32,
                  'jenkins-oidc-client', UUID.randomUUID().toString(), 'revoke', 'mint', 'id-token', 'jort_junk', null],
    (Map)      : [[serviceUrl: capture.url], [credentialsId: 'prod-database'], forgedFacts, [serviceUrl: capture.url, credentialsId: 'jenkins-oidc-client'], [:], null,
                  [audience: 'sts.amazonaws.com'],
                  new Fresh({ hostileMap([serviceUrl: serviceUrl], [serviceUrl: capture.url]) }),
                  new Fresh({ hostileMap([audience: 'sts.amazonaws.com'], [audience: 'sts.amazonaws.com', serviceUrl: capture.url, job: 'prod/deploy']) }),
                  new Fresh({ [serviceUrl: flipping()] }),
                  new Fresh({ [audience: [flipping()]] })],
    (List)     : [[capture.url], [['job', 'prod/deploy'], ['grant_type', TokenService.MINT]], [forgedRun], null,
                  [[capture.url, 'jenkins-oidc-client'], [serviceUrl, 'prod-database']]],
    (Object)   : [forgedRun, mapRun, expandoRun, new ScriptDefinedRun(), capture.url, null, new Fresh({ flipping() })],
    (FilePath) : [new FilePath(elsewhere), null],
    (Closure)  : [{ Object... a -> 'the caller\'s block' }],
    (Reference): [new Reference(forgedFacts), new Reference([serviceUrl: capture.url]), new Reference('credentials'), new Reference({ -> 'block' }), new Reference(forgedRun)],
    (Binding)  : [h.binding()],
    (boolean)  : [true, false],
    (int)      : [86400, 0, 200],
    (String[]) : [[] as String[]],
  ]
  /** An object to call an instance member on: a script with the harness's steps, a closure owned by one. */
  Closure instanceOf = { Class c ->
    String script = c.name.split('\\$')[0]
    Class scriptClass = surface.byName(script)
    if (c == scriptClass) return c.getDeclaredConstructor(Binding).newInstance(h.binding())
    if (Closure.isAssignableFrom(c)) {
      def owner = scriptClass.getDeclaredConstructor(Binding).newInstance(h.binding())
      java.lang.reflect.Constructor k = c.declaredConstructors[0]
      k.accessible = true
      return k.newInstance([owner, owner] + k.parameterTypes.drop(2).collect { new Reference(forgedFacts) } as Object[])
    }
    java.lang.reflect.Constructor k = c.getDeclaredConstructor()
    k.accessible = true
    return k.newInstance()
  }
  List outcomes = []
  int calls = 0
  Map<String, Integer> walksByMember = [:]
  Map<String, Set<String>> hostileCallsByMember = [:]
  h.pipeline {
    members.findAll { !LibrarySurface.plumbing(it.member) && !(it.member instanceof java.lang.reflect.Field) && only(it.signature) }.each { Map m ->
      Class[] types = m.member.parameterTypes
      List<Object[]> argLists = Pairwise.of(types.collect { pools[it] ?: [null] }, wholeProductUpTo)
      argLists.each { Object[] template ->
        int mapsBefore = hostileMaps.size()
        Object[] args = template.collect { it instanceof Fresh ? it.make.call() : it } as Object[]
        calls++
        try {
          m.member.accessible = true
          if (m.member instanceof java.lang.reflect.Constructor) {
            outcomes << m.member.newInstance(args)
          } else {
            Object target = LibrarySurface.isStatic(m.member) ? null : instanceOf(m.member.declaringClass)
            outcomes << target
            outcomes << m.member.invoke(target, args)
          }
        } catch (java.lang.reflect.InvocationTargetException e) {
          outcomes << e.cause
        } catch (Throwable t) {
          outcomes << t
        }
        hostileMaps.drop(mapsBefore).each { HostileMap hm ->
          walksByMember[m.signature] = Math.max(walksByMember[m.signature] ?: 0, hm.@walks)
          (hostileCallsByMember[m.signature] = hostileCallsByMember[m.signature] ?: ([] as Set)).addAll(hm.@calls)
        }
      }
    }
  }
  // Fields, static and of every object the calls made or returned, private included.
  members.findAll { it.member instanceof java.lang.reflect.Field && LibrarySurface.isStatic(it.member) }.each { Map m ->
    m.member.accessible = true
    outcomes << m.member.get(null)
  }
  String seen = reachableText(outcomes, library)
  // Tokens written to files (RequestTokenFile.create returns only paths) count too.
  [new File(elsewhere.path + '@tmp'), new File(h.workspace.path + '@tmp')].each { File tmp ->
    if (tmp.directory) tmp.eachFileRecurse { File f -> if (f.name == 'request-token') seen += ' ' + f.text }
  }
  return [surface: surface, members: members, calls: calls, seen: seen, hostileMaps: hostileMaps, flips: flips, walksByMember: walksByMember,
          hostileCallsByMember: hostileCallsByMember]
}

/** The members that reach the controller's side: the library's classes and the steps themselves (not the steps' agent-side helpers, which only run sh). */
@Field Closure<Boolean> CONTROLLER_SIDE = { String signature -> signature.startsWith('io.jenkinsoidc.') || signature ==~ /[A-Za-z]+#call\(.*/ }

/** Every request token and ID token in `seen`; request tokens exchanged (then revoked) so their claims can be read. */
Map tokensIn(String seen) {
  List<String> tokens = (seen =~ /jort_[A-Za-z0-9_-]{43}/).collect { it as String }.unique()
  List<String> jwts = (seen =~ /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/).collect { it as String }.unique()
  List<String> revoked = []
  tokens.each { String t ->
    Map r = exchange(serviceUrl, t)
    if (r.status == 200) jwts << (r.body.access_token as String)
    else if (r.body?.error_description == 'the build request token has been revoked') revoked << t
    else assert false: "an unexpected answer for a token the sweep produced: ${r}"
    httpPost("${serviceUrl}/token/revocation", [client_id: 'jenkins-build', token: t])
  }
  return [tokens: tokens, jwts: jwts, revoked: revoked]
}

tests['reach: every member of the library, called as a Jenkinsfile could, with hostile arguments in combination'] = {
  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller(job: 'reach/real-run', number: 7)
    Map sweep = hostileSweep(h, capture, 200)
    List<String> own = sweep.members.findAll { !LibrarySurface.plumbing(it.member) }*.signature
    List<String> unlisted = own - REACH.keySet(), gone = (REACH.keySet() as List) - own
    assert unlisted == []: 'a new member: list it in REACH with the reason it is harmless when a Jenkinsfile calls it'
    assert gone == []: 'REACH lists members the library no longer has'
    assert sweep.calls > 2000
    assert !sweep.seen.contains(clientSecret)
    assert capture.requests == []
    assert !h.logText().contains(clientSecret) && !h.stepArgumentsText().contains(clientSecret)
    // Hostile maps: every member that takes a caller's options walks them once (entrySet) and reads only its copy after;
    // a second walk, or a get() on the caller's map, would let a value checked once be used changed.
    List<String> entries = ['io.jenkinsoidc.StepOptions#snapshot(String, Map, List)', 'io.jenkinsoidc.StepOptions#snapshot(String, Map, List, List)',
                            'io.jenkinsoidc.ControllerSettings#forStep(Map)', 'io.jenkinsoidc.TokenService#mintForCurrentBuild(Map)',
                            'io.jenkinsoidc.TokenService#idTokenForCurrentBuild(Map)', 'io.jenkinsoidc.TokenService#revokeForCurrentBuild(Map, String)',
                            'io.jenkinsoidc.TokenService#asController(String, Map, String)', 'io.jenkinsoidc.TokenService#agentSha256(Map)',
                            'io.jenkinsoidc.RequestTokenFile#create(Map, FilePath, String)', 'io.jenkinsoidc.RequestTokenFile#remove(Map, FilePath, String, String, String)',
                            'withJenkinsOidc#call(Map, Closure)', 'jenkinsOidcToken#call(Map)', 'jenkinsOidcToken#call(Map, Closure)', 'withAwsOidc#call(Map, Closure)']
    entries.each { String e ->
      assert sweep.walksByMember[e] == 1: "${e} walked a caller's map ${sweep.walksByMember[e]} times"
      assert sweep.hostileCallsByMember[e] == ['entrySet'] as Set: "${e} called ${sweep.hostileCallsByMember[e]} on a caller's map"
    }
    // Flipping GStrings: rendered once per snapshot, never at the point of use.
    assert sweep.flips && sweep.flips.every { it.renders <= 1 }
    // Every token the calls produced speaks for the build that made the calls, never for the forged one.
    Map found = tokensIn(sweep.seen)
    assert found.tokens && found.jwts
    found.jwts.each { assert claimsOf(it).subMap(['job', 'build_number']) == [job: 'reach/real-run', build_number: '7'] }
    println "  reach: ${own.size()} members, ${sweep.calls} hostile calls, ${found.tokens.size()} request tokens and ${found.jwts.size()} ID tokens, all for reach/real-run #7"
  } finally {
    capture.stop()
  }
}

tests['reach: with version override allowed, or in a restart of a Replay, no member mints anything'] = {
  CaptureServer capture = new CaptureServer()
  try {
    [[libraries: [pinnedLibrary(allowVersionOverride: true)]],
     [causes: [new Cause.UserIdCause('mallory'), new RestartDeclarativePipelineCause(
        new FakeRun(parent: new FakeJob(fullName: 'reach/real-run'), number: 5, causes: [new ReplayCause(4), new Cause.UserIdCause('mallory')]), 5, 'Deploy')]],
    ].each { Map setup ->
      Harness h = controller([job: 'reach/real-run', number: 8] + setup)
      Map sweep = hostileSweep(h, capture, 200, CONTROLLER_SIDE)
      Map found = tokensIn(sweep.seen)
      assert found.tokens == [] && found.jwts == []
      assert !sweep.seen.contains(clientSecret) && capture.requests == []
      println "  reach (${setup.keySet()[0]}): ${sweep.calls} hostile calls, no token"
    }
  } finally {
    capture.stop()
  }
}

int passed = 0, failed = 0
String only = System.getenv('JENKINS_OIDC_TEST_ONLY')
tests.each { name, test ->
  if (only && !name.contains(only)) return
  long started = System.nanoTime()
  try {
    test()
    passed++
    println "ok - ${name} (${((System.nanoTime() - started) / 1000000) as long} ms)"
  } catch (Throwable t) {
    failed++
    println "not ok - ${name}\n  ${t.toString().readLines().join('\n  ')}"
    // Where in the tests it failed, when the failure is not an assertion's own report.
    if (!(t instanceof AssertionError)) println "  at ${t.stackTrace.findAll { it.fileName?.endsWith('LibraryTest.groovy') }.take(3).collect { "line ${it.lineNumber}" }.join(', ')}"
    println "  build log (last lines):\n    ${lastHarness?.logText()?.readLines()?.takeRight(12)?.join('\n    ')}"
  }
}
println "${passed} passed, ${failed} failed"
System.exit(failed ? 1 : 0)
