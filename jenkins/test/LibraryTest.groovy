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
assert serviceUrl && clientId && clientSecret && jenkinsUrl

class GitSource extends SCMSource { String remote }
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

/** A controller as configured by the admin guide, and one build of one job. */
Harness controller(Map opts = [:]) {
  Jenkins.get().globalNodeProperties.clear()
  Jenkins.get().globalNodeProperties << new EnvironmentVariablesNodeProperty(envVars: (opts.containsKey('props') ? opts.props : [JENKINS_OIDC_URL: serviceUrl]) as Map)
  CredentialsProvider.stored.clear()
  CredentialsProvider.stored << (opts.credential ?: new UsernamePasswordCredentialsImpl(CredentialsScope.SYSTEM, 'jenkins-oidc-client', 'jenkins-oidc', clientId, clientSecret))
  SCMHead.HeadByItem.heads.clear(); SCMSource.SourceByItem.sources.clear()
  FakeJob job = new FakeJob(fullName: opts.job ?: 'team/app/main')
  int number = opts.number ?: 42
  FakeRun run = new FakeRun(parent: job, number: number, absoluteUrl: "${jenkinsUrl}/job/${job.fullName.replace('/', '/job/')}/${number}/",
                            causes: opts.causes ?: [new Cause.UserIdCause('alice')])
  if (opts.head != false) SCMHead.HeadByItem.heads[job] = opts.head ?: new SCMHead('main')
  if (opts.source != false) {
    GitSource source = new GitSource(remote: 'https://git.example.com/team/app.git')
    SCMSource.SourceByItem.sources[job] = source
    // What the branch source attaches before the Jenkinsfile runs.
    run.allActions << new SCMRevisionAction(source, new GitRevision(hash: opts.commit ?: '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c'))
  }
  lastHarness = new Harness(root, run, (opts.buildEnv ?: [:]) as Map)
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
  assert c.job == 'team/app/main' && c.build_number == 42
  assert c.build_url == "${jenkinsUrl}/job/team/job/app/job/main/42/"
  assert c.ref == 'refs/heads/main' && c.ref_type == 'branch'
  assert c.commit == '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c'
  assert c.repository == 'https://git.example.com/team/app.git'
  assert c.triggered_by == 'alice'
  assert c.replayed == false
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
  assert c.job == 'team/app/main' && c.build_number == 42 && c.ref == 'refs/heads/main'
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
  assert none == 'no token service URL configured: an administrator sets the global property JENKINS_OIDC_URL (Manage Jenkins > System > Global properties, or Configuration as Code)'
  String evil = failure(controller()) { withJenkinsOidc(serviceUrl: 'https://evil.example.com') { } }
  assert evil == "serviceUrl https://evil.example.com is not allowed: the controller's client secret would be sent there. An administrator can list it in JENKINS_OIDC_ALLOWED_URLS"
  String otherCredential = failure(controller()) { withJenkinsOidc(credentialsId: 'prod-database') { } }
  assert otherCredential == 'credentialsId prod-database is not allowed: an administrator can list it in JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS'
  String down = failure(controller(props: [JENKINS_OIDC_URL: 'http://127.0.0.1:9'])) { withJenkinsOidc { } }
  assert down == 'could not mint a build request token: the token service at http://127.0.0.1:9/token did not answer (ConnectException)'
  String allowed = failure(controller(props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOWED_URLS: ' http://127.0.0.1:9 , https://other.example.com'])) { withJenkinsOidc(serviceUrl: 'http://127.0.0.1:9') { } }
  assert allowed == 'could not mint a build request token: the token service at http://127.0.0.1:9/token did not answer (ConnectException)'
  String query = failure(controller(props: [JENKINS_OIDC_URL: 'https://user@oidc.example.com/?x=1'])) { withJenkinsOidc { } }
  assert query == "the token service URL 'https://user@oidc.example.com/?x=1' is not an http(s) URL without query, fragment or user part; fix JENKINS_OIDC_URL"
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
    Jenkins.get().plugins['mask-passwords'] = 'installed'
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

tests['withAwsOidc credentials mode: keys only in a private shared-credentials file, never in the environment or a step'] = {
  Harness h = controller(buildEnv: awsAgentEnv + [AWS_ACCESS_KEY_ID: 'AKIAAGENTSOWNKEY0000', AWS_SECRET_ACCESS_KEY: 'agent-own-secret'])
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

int passed = 0, failed = 0
String only = System.getenv('JENKINS_OIDC_TEST_ONLY')
tests.each { name, test ->
  if (only && !name.contains(only)) return
  try {
    test()
    passed++
    println "ok - ${name}"
  } catch (Throwable t) {
    failed++
    println "not ok - ${name}\n  ${t.toString().readLines().join('\n  ')}"
    println "  build log (last lines):\n    ${lastHarness?.logText()?.readLines()?.takeRight(12)?.join('\n    ')}"
  }
}
println "${passed} passed, ${failed} failed"
System.exit(failed ? 1 : 0)
