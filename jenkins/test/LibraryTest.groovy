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
import hudson.FilePath
import io.jenkinsoidc.BuildFacts
import io.jenkinsoidc.ControllerSettings
import io.jenkinsoidc.JenkinsOidcException
import io.jenkinsoidc.RequestTokenFile
import io.jenkinsoidc.TokenService

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

// ---- Replay, checkout, step arguments -----------------------------------------------

tests['a replayed build is refused by default, with the reason and the fix'] = {
  Harness h = controller(causes: [new ReplayCause(41), new Cause.UserIdCause('mallory')])
  String msg = failure(h) { withJenkinsOidc { } }
  assert msg == 'jenkins-oidc: this build was started by Replay, which runs pipeline code that is not in SCM; it gets no token. ' +
                'Re-run it from SCM, or an administrator sets the global property JENKINS_OIDC_ALLOW_REPLAY=true (tokens then carry replayed=true)'
  assert failure(h) { jenkinsOidcToken() } == msg
  assert h.workspace.parentFile.listFiles().find { it.name == h.workspace.name + '@tmp' }.list() as List == []
}

tests['a replayed build mints when the admin allows it, and its tokens say replayed=true'] = {
  Harness h = controller(causes: [new ReplayCause(41), new Cause.UserIdCause('mallory')],
                         props: [JENKINS_OIDC_URL: serviceUrl, JENKINS_OIDC_ALLOW_REPLAY: 'true'])
  String jwt
  h.pipeline { withJenkinsOidc { jwt = idTokenInBuild(h) } }
  Map c = claimsOf(jwt)
  assert c.replayed == true && c.triggered_by == 'mallory' && c.job == 'team/app/main'
}

tests['multibranch facts come from the branch source, not from what a checkout in the Jenkinsfile adds'] = {
  Harness h = controller()
  String jwt
  h.pipeline {
    checkout(url: 'https://evil.example.com/other.git', commit: 'deadbeefdeadbeefdeadbeefdeadbeefdeadbeef')
    withJenkinsOidc { jwt = idTokenInBuild(h) }
  }
  Map c = claimsOf(jwt)
  assert c.commit == '4f2a9c1e0b7d3a5f6c8e9d0a1b2c3d4e5f6a7b8c' && c.repository == 'https://git.example.com/team/app.git'
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
  assert minted.keySet() == ['token', 'expiresIn', 'requestUrl'] as Set && !minted.toString().contains(clientSecret)
  TokenService.revoke([:], minted.token as String)
}

tests['attack: new TokenService(url).mint(creds, forged facts, ...) — facts and URL cannot be chosen'] = {
  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller()
    assert (attempt(h) { new TokenService(capture.url) } as String).startsWith('GroovyRuntimeException: Could not find matching constructor for: io.jenkinsoidc.TokenService(java.lang.String)')
    Map forged = [job: 'prod/deploy', build_number: '1', build_url: "${jenkinsUrl}/job/prod/job/deploy/1/".toString(), replayed: 'false', ttl: 86400,
                  facts: [job: 'prod/deploy'], run: new FakeRun(parent: new FakeJob(fullName: 'prod/deploy'), number: 1, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/1/")]
    // Options are read by name: job, build_number, build_url, facts and run are never looked at.
    Map minted = attempt(h) { TokenService.mintForCurrentBuild(forged) } as Map
    Map c = claimsOf(exchange(serviceUrl, minted.token as String).body.access_token as String)
    assert c.job == 'team/app/main' && c.build_number == 42 && c.build_url == "${jenkinsUrl}/job/team/job/app/job/main/42/"
    TokenService.revoke([:], minted.token as String)
    assert attempt(h) { TokenService.mintForCurrentBuild([serviceUrl: capture.url]) } == "JenkinsOidcException: serviceUrl ${capture.url} is not allowed: the controller's client secret would be sent there. An administrator can list it in JENKINS_OIDC_ALLOWED_URLS"
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
    String refused = "JenkinsOidcException: serviceUrl ${capture.url} is not allowed: the controller's client secret would be sent there. An administrator can list it in JENKINS_OIDC_ALLOWED_URLS"
    assert attempt(h) { ControllerSettings.forStep([serviceUrl: capture.url]) } == refused
    assert attempt(h) { TokenService.revoke([serviceUrl: capture.url], 'jort_x') } == false
    assert attempt(h) { TokenService.exchange([serviceUrl: capture.url], 'jort_x', 'sts.amazonaws.com') } == refused
    assert attempt(h) { TokenService.agentSha256([serviceUrl: capture.url]) } == refused
    assert attempt(h) { RequestTokenFile.remove([serviceUrl: capture.url], new FilePath(h.workspace), '0' * 32) } == false
    assert capture.requests == []
  } finally {
    capture.stop()
  }
}

tests['attack: TokenService.post as an HTTP client on the controller network — only fixed paths of the admin URL'] = {
  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller()
    String host = capture.url - 'http://'
    assert attempt(h) { TokenService.publicCall([:], "@${host}/steal", [['a', 'b']], 'x') } == "JenkinsOidcException: no such token service endpoint: @${host}/steal"
    assert attempt(h) { TokenService.publicCall([:], '/agent/../token', [], 'x') } == 'JenkinsOidcException: no such token service endpoint: /agent/../token'
    assert (attempt(h) { TokenService.post('/token', [], null, 'x') } as String).startsWith('MissingMethodException: No signature of method: static io.jenkinsoidc.TokenService.post()')
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
                                                         ref: 'refs/heads/main', repository: 'https://git.example.com/team/app.git',
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
  'io.jenkinsoidc.BuildFacts#<init>()': 'an object without state',
  'io.jenkinsoidc.BuildFacts#ofCurrentBuild()': 'no argument: the facts of the build running the caller, which describe the caller itself',
  'io.jenkinsoidc.ControllerSettings#<init>()': 'an object without state',
  'io.jenkinsoidc.ControllerSettings#forStep(Map)': "returns the admin's URL and credential id, or an allow-listed override; sends nothing",
  'io.jenkinsoidc.ControllerSettings#chosen(String, String, String, String, String)': 'a pure function of its strings; sends and reads nothing',
  'io.jenkinsoidc.JenkinsOidcException#<init>(String)': 'an exception with the caller\'s own message',
  'io.jenkinsoidc.Masking#<init>()': 'an object without state',
  'io.jenkinsoidc.Masking#available()': 'whether a plugin is installed',
  'io.jenkinsoidc.RequestTokenFile#<init>()': 'an object without state',
  'io.jenkinsoidc.RequestTokenFile#create(Map, FilePath)': "writes the caller's own request token under a FilePath the caller already controls (FilePath is final: only a real one, e.g. getContext(hudson.FilePath)); returns paths, never the token",
  'io.jenkinsoidc.RequestTokenFile#remove(Map, FilePath, String)': 'reads only jenkins-oidc-<32 hex>/request-token, sends it only if it is shaped like a request token, only to the admin URL, to revoke it',
  'io.jenkinsoidc.StepOptions#<init>()': 'an object without state',
  'io.jenkinsoidc.StepOptions#checkKnown(String, Map, List)': 'compares map keys with a list',
  'io.jenkinsoidc.StepOptions#number(Map, String)': 'reads a number from the caller\'s own map',
  'io.jenkinsoidc.StepOptions#text(Map, String)': 'reads a string from the caller\'s own map; calls no method of an arbitrary object',
  'io.jenkinsoidc.StepOptions#texts(Map, String)': 'reads strings from the caller\'s own map',
  'io.jenkinsoidc.TokenService#<init>()': 'an object without state',
  'io.jenkinsoidc.TokenService#mintForCurrentBuild(Map)': "the one reader of the client secret: the admin's credential and URL, the facts of the calling build; returns that build's own request token",
  'io.jenkinsoidc.TokenService#idTokenForCurrentBuild(Map)': "mints as above, then returns the calling build's own ID token",
  'io.jenkinsoidc.TokenService#agentSha256(Map)': "reads a public checksum from the admin's URL",
  'io.jenkinsoidc.TokenService#revoke(Map, String)': "sends the caller's string, unauthenticated, to the admin URL (what curl on an agent can do)",
  'io.jenkinsoidc.TokenService#exchange(Map, String, String)': "sends the caller's strings, unauthenticated, to the admin URL (what curl on an agent can do)",
  'io.jenkinsoidc.TokenService#publicCall(Map, String, List, String)': 'unauthenticated POST to two fixed paths of the admin URL only',
  'io.jenkinsoidc.TokenService#answerOf(int, String, String, String)': 'parses the caller\'s strings',
  'io.jenkinsoidc.TokenService#formBody(List)': 'encodes the caller\'s strings',
  'io.jenkinsoidc.TokenService#getMINT()': 'a public protocol constant', 'io.jenkinsoidc.TokenService.MINT': 'a final public protocol constant',
  'io.jenkinsoidc.TokenService#getEXCHANGE()': 'a public protocol constant', 'io.jenkinsoidc.TokenService.EXCHANGE': 'a final public protocol constant',
  'io.jenkinsoidc.TokenService#getREQUEST_TOKEN_TYPE()': 'a public protocol constant', 'io.jenkinsoidc.TokenService.REQUEST_TOKEN_TYPE': 'a final public protocol constant',
  'io.jenkinsoidc.TokenService#getTIMEOUT_MS()': 'a constant', 'io.jenkinsoidc.TokenService.TIMEOUT_MS': 'a final constant',
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
  'withAwsOidc#parentOf(String)': 'string function', 'withAwsOidc#quoteAll(List)': 'string function', 'withAwsOidc#psAll(List)': 'string function',
  'withAwsOidc#parseVariables(String)': 'string function', 'withAwsOidc#assignments(Map)': 'string function over the caller\'s map',
  'withAwsOidc$_call_closure1#<init>(Object, Object, Reference, Reference, Reference, Reference, Reference)': 'the withJenkinsOidc block, from the caller\'s own values',
  'withAwsOidc$_call_closure1#doCall()': 'runs the steps of withAwsOidc with the captured options', 'withAwsOidc$_call_closure1#doCall(Object)': 'as doCall()',
  'withAwsOidc$_call_closure1#getArgs()': "the step's options", 'withAwsOidc$_call_closure1.args': "the step's options",
  'withAwsOidc$_call_closure1#getMode()': "the step's mode", 'withAwsOidc$_call_closure1.mode': "the step's mode",
  'withAwsOidc$_call_closure1#getAudience()': "the step's audience", 'withAwsOidc$_call_closure1.audience': "the step's audience",
  'withAwsOidc$_call_closure1#getOidcArgs()': "the step's withJenkinsOidc options", 'withAwsOidc$_call_closure1.oidcArgs': "the step's withJenkinsOidc options",
  'withAwsOidc$_call_closure1#getBody()': "the caller's own closure", 'withAwsOidc$_call_closure1.body': "the caller's own closure",
  'withAwsOidc$_call_closure1$_closure2#<init>(Object, Object, Reference)': 'the withEnv block', 'withAwsOidc$_call_closure1$_closure2#doCall()': 'calls the captured closure',
  'withAwsOidc$_call_closure1$_closure2#doCall(Object)': 'calls the captured closure', 'withAwsOidc$_call_closure1$_closure2#getBody()': "the caller's own closure",
  'withAwsOidc$_call_closure1$_closure2.body': "the caller's own closure",
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

/** Everything readable from a value: strings, collections, exceptions, and the fields of library objects. */
String reachableText(Object o, Set<Class> library, int depth = 4, Set seen = Collections.newSetFromMap(new IdentityHashMap())) {
  if (o == null || depth < 0 || !seen.add(o)) return ''
  if (o instanceof CharSequence || o instanceof Number || o instanceof Boolean) return o.toString()
  if (o instanceof Map) return ((Map) o).collect { k, v -> reachableText(k, library, depth - 1, seen) + '=' + reachableText(v, library, depth - 1, seen) }.join(' ')
  if (o instanceof Collection || o.getClass().isArray()) return (o as List).collect { reachableText(it, library, depth - 1, seen) }.join(' ')
  if (o instanceof Throwable) {
    StringWriter w = new StringWriter(); ((Throwable) o).printStackTrace(new PrintWriter(w)); return w.toString()
  }
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

tests['reach: every member of the library, called as a Jenkinsfile could, with hostile arguments'] = {
  LibrarySurface surface = new LibrarySurface(root, this.class.classLoader)
  Set<Class> library = surface.classes as Set
  List<Map> members = surface.members()
  List<String> own = members.findAll { !LibrarySurface.plumbing(it.member) }*.signature
  List<String> unlisted = own - REACH.keySet(), gone = (REACH.keySet() as List) - own
  assert unlisted == []: 'a new member: list it in REACH with the reason it is harmless when a Jenkinsfile calls it'
  assert gone == []: 'REACH lists members the library no longer has'

  CaptureServer capture = new CaptureServer()
  try {
    Harness h = controller(job: 'reach/real-run', number: 7)
    File elsewhere = File.createTempDir('jenkins-oidc-elsewhere', '')
    FakeRun forgedRun = new FakeRun(parent: new FakeJob(fullName: 'prod/deploy'), number: 999, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/999/")
    Map mapRun = [parent: [fullName: 'prod/deploy'], number: 999, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/999/".toString()]
    Expando expandoRun = new Expando(parent: new Expando(fullName: 'prod/deploy'), number: 999, absoluteUrl: "${jenkinsUrl}/job/prod/job/deploy/999/")
    Map forgedFacts = [job: 'prod/deploy', build_number: '999', build_url: "${jenkinsUrl}/job/prod/job/deploy/999/".toString(), replayed: 'false',
                       run: forgedRun, facts: mapRun, rawBuild: expandoRun, ttl: 86400, audience: ['sts.amazonaws.com']]
    Map<Class, List> pools = [
      (String)   : ['prod-database', capture.url, "${capture.url}/token".toString(), "@${capture.url - 'http://'}/x".toString(), '0' * 32, 'jenkins-oidc-client', null],
      (Map)      : [[serviceUrl: capture.url], [credentialsId: 'prod-database'], forgedFacts, [serviceUrl: capture.url, credentialsId: 'jenkins-oidc-client'], [:], null],
      (List)     : [[capture.url], [['job', 'prod/deploy'], ['grant_type', TokenService.MINT]], [forgedRun], null],
      (Object)   : [forgedRun, mapRun, expandoRun, new ScriptDefinedRun(), capture.url, null],
      (FilePath) : [new FilePath(elsewhere), null],
      (Closure)  : [{ Object... a -> 'the caller\'s block' }],
      (Reference): [new Reference(forgedFacts), new Reference([serviceUrl: capture.url]), new Reference('credentials'), new Reference({ -> 'block' }), new Reference(forgedRun)],
      (Binding)  : [h.binding()],
      (boolean)  : [true, false],
      (int)      : [86400, 0],
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
    h.pipeline {
      members.findAll { !LibrarySurface.plumbing(it.member) && !(it.member instanceof java.lang.reflect.Field) }.each { Map m ->
        Class[] types = m.member.parameterTypes
        int vectors = types ? types.collect { (pools[it] ?: [null]).size() }.max() : 1
        (0..<vectors).each { int j ->
          Object[] args = types.collect { Class t -> List p = pools[t] ?: [null]; p[j % p.size()] } as Object[]
          calls++
          try {
            if (m.member instanceof java.lang.reflect.Constructor) {
              m.member.accessible = true
              outcomes << m.member.newInstance(args)
            } else {
              m.member.accessible = true
              Object target = LibrarySurface.isStatic(m.member) ? null : instanceOf(m.member.declaringClass)
              outcomes << target
              outcomes << m.member.invoke(target, args)
            }
          } catch (java.lang.reflect.InvocationTargetException e) {
            outcomes << e.cause
          } catch (Throwable t) {
            outcomes << t
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
    assert calls > 150
    assert !seen.contains(clientSecret)
    assert capture.requests == []
    assert !h.logText().contains(clientSecret) && !h.stepArgumentsText().contains(clientSecret)
    // Every token the calls produced speaks for the build that made the calls, never for the forged one.
    // Tokens written to files (RequestTokenFile.create returns only paths) count too.
    [new File(elsewhere.path + '@tmp'), new File(h.workspace.path + '@tmp')].each { File tmp ->
      if (tmp.directory) tmp.eachFileRecurse { File f -> if (f.name == 'request-token') seen += ' ' + f.text }
    }
    List<String> tokens = (seen =~ /jort_[A-Za-z0-9_-]{43}/).collect { it as String }.unique()
    List<String> jwts = (seen =~ /eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/).collect { it as String }.unique()
    assert tokens && jwts
    tokens.each { String t ->
      Map r = exchange(serviceUrl, t)
      if (r.status == 200) jwts << (r.body.access_token as String)
      else assert r.body.error_description == 'the build request token has been revoked'
      TokenService.revoke([:], t)
    }
    jwts.each { assert claimsOf(it).subMap(['job', 'build_number']) == [job: 'reach/real-run', build_number: 7] }
    println "  reach: ${own.size()} members, ${calls} hostile calls, ${tokens.size()} request tokens and ${jwts.size()} ID tokens, all for reach/real-run #7"
  } finally {
    capture.stop()
  }
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
