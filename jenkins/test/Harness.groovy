import hudson.FilePath
import hudson.plugins.git.util.BuildData
import org.jenkinsci.plugins.workflow.cps.CpsFlowExecution
import org.jenkinsci.plugins.workflow.cps.CpsThread
import org.jenkinsci.plugins.workflow.flow.FlowExecutionOwner

/**
 * Runs the library's vars/ scripts the way a pipeline would, with stand-ins
 * for the pipeline steps: `sh` really runs /bin/sh, files are really written,
 * masking behaves as the Mask Passwords plugin documents (each masked value
 * shows as ******** in the log), withEnv removes a variable given an empty
 * value (hudson.EnvVars.override). The token service is the real one.
 *
 * As strict as Jenkins where the library could be caught out:
 * - A process `sh` starts inherits the agent process's own environment
 *   (core Launcher.inherit) under the build's: a variable withEnv removed
 *   from the build's environment comes back if the agent process has it.
 * - `sh` carries JENKINS_SERVER_COOKIE for its directory, and stopping a
 *   step (stopShIn) kills every process carrying that cookie, as
 *   durable-task's BourneShellScript does with ProcessTree.killAll.
 * - `dir` pushes a child FilePath as the context (its @tmp lies inside the
 *   workspace), and env.WORKSPACE is the node's workspace root.
 * - With the agent gone (agentGone), getContext(FilePath) and sh throw, as
 *   FilePathDynamicContext and a closed remoting channel do.
 * - A failure ends the build as WorkflowRun prints it: an AbortException as
 *   its message, anything else with its stack trace.
 *
 * While pipeline() runs, the current CPS thread's execution is this build's
 * (CpsThread.current(), as workflow-cps sets it), so the library finds `run`
 * the way it does in Jenkins. Every step call is recorded with its arguments
 * in `steps`: Pipeline stores step arguments with the build record.
 */
class Harness {
  final File root          // jenkins/
  final File workspace
  final StringBuilder log = new StringBuilder()
  final Map<String, String> env = [:]
  /** The agent process's own environment: what every process it starts inherits. */
  final Map<String, String> agentEnv = [:]
  /** The agent's connection is gone. */
  boolean agentGone = false
  List<Map<String, String>> overlays = []
  List<String> masks = []
  File cwd
  def run
  /** Every step invocation: [step: name, args: [...]], in order. */
  final List<Map> steps = []

  Harness(File root, run, Map<String, String> buildEnv = [:], Map<String, String> agentProcessEnv = [:]) {
    this.root = root
    this.run = run
    workspace = File.createTempDir('jenkins-oidc-ws', '')
    new File(workspace.path + '@tmp').mkdirs()
    cwd = workspace
    agentEnv.putAll(System.getenv())
    agentEnv.putAll(agentProcessEnv)
    // The build's environment starts from the node's (which holds the agent's) and the node step's WORKSPACE.
    env.putAll(agentEnv)
    env.WORKSPACE = workspace.path
    env.putAll(buildEnv)
  }

  /** The build's environment (env.X): withEnv overlays applied, a removed variable gone. */
  Map<String, String> currentEnv() {
    Map<String, String> all = [:] + env
    overlays.each { o -> o.each { k, v -> if (v) all[k] = v else all.remove(k) } }
    return all
  }

  /** What a started process gets: the agent process's environment under the build's (Launcher.inherit). */
  Map<String, String> processEnv(File dir) {
    return [:] + agentEnv + currentEnv() + [JENKINS_SERVER_COOKIE: cookieFor(dir)]
  }

  /** durable-task's cookie of a step directory: one per directory, shared by every sh run there. */
  static String cookieFor(File dir) {
    'durable-' + java.security.MessageDigest.getInstance('MD5').digest(dir.canonicalPath.getBytes('UTF-8')).encodeHex().toString()
  }

  /** Stopping a sh step in `dir` (a timeout, a fail-fast parallel branch): every process carrying the directory's cookie is killed. */
  List<Integer> stopShIn(File dir) {
    String entry = "JENKINS_SERVER_COOKIE=${cookieFor(dir)}".toString()
    List<Integer> killed = []
    new File('/proc').eachFile { File p ->
      if (!(p.name ==~ /\d+/)) return
      try {
        if (new File(p, 'environ').bytes.with { new String(it, 'UTF-8').split('\u0000') }.contains(entry)) {
          new ProcessBuilder('kill', '-9', p.name).start().waitFor()
          killed << (p.name as int)
        }
      } catch (IOException ignored) {
        // A process that ended meanwhile, or another user's.
      }
    }
    return killed
  }

  /** All recorded step arguments as one text, to search for values that must never be there. */
  String stepArgumentsText() { steps.collect { "${it.step}(${it.args.inspect()})" }.join('\n') }

  private void append(String text) {
    String out = text
    masks.each { m -> if (m) out = out.replace(m, '********') }
    log.append(out)
  }

  String logText() { log.toString() }

  Object sh(Object arg) {
    if (agentGone) throw new IOException('Unable to create live FilePath for agent-1; agent-1 was marked offline: Connection was broken')
    Map a = arg instanceof Map ? arg : [script: arg]
    ProcessBuilder pb = new ProcessBuilder('/bin/sh', '-c', a.script as String)
    pb.directory(cwd)
    pb.environment().clear()
    pb.environment().putAll(processEnv(cwd))
    pb.redirectErrorStream(!a.returnStdout)
    Process p = pb.start()
    def errText = new StringBuffer()
    Thread errReader = null
    if (a.returnStdout) errReader = Thread.start { errText.append(p.errorStream.getText('UTF-8')) }
    String out = p.inputStream.getText('UTF-8')
    int code = p.waitFor()
    errReader?.join()
    append("+ ${a.script}\n")
    if (!a.returnStdout) append(out)
    append(errText.toString())
    if (a.returnStatus) return code
    if (code != 0) throw new PipelineError("script returned exit code ${code}")
    return a.returnStdout ? out : null
  }

  Binding binding() {
    Binding b = new Binding()
    Harness h = this
    b.setVariable('env', new EnvView(h))
    b.setVariable('currentBuild', [number: run.number])
    step(b, 'sh') { arg -> h.sh(arg) }
    step(b, 'getContext') { Class type ->
      if (h.agentGone) throw new IOException('Unable to create live FilePath for agent-1; agent-1 was marked offline: Connection was broken')
      type == FilePath ? new FilePath(h.cwd) : null
    }
    // The git plugin's checkout attaches BuildData naming what it checked out.
    step(b, 'checkout') { Map a -> h.run.allActions << new BuildData(a.url as String, a.commit as String) }
    step(b, 'isUnix') { -> true }
    step(b, 'echo') { String m -> h.append(m + '\n') }
    step(b, 'error') { String m -> throw new PipelineError(m) }
    step(b, 'pwd') { Map a = [:] -> a.tmp ? h.workspace.path + '@tmp' : h.cwd.path }
    step(b, 'writeFile') { Map a ->
      File f = new File(a.file as String).absolute ? new File(a.file as String) : new File(h.cwd, a.file as String)
      f.parentFile.mkdirs()
      f.setText(a.text as String, 'UTF-8')
    }
    step(b, 'libraryResource') { String path -> new File(h.root, "resources/${path}").getText('UTF-8') }
    step(b, 'withEnv') { List<String> vars, Closure body ->
      Map<String, String> overlay = [:]
      vars.each { String kv -> int i = kv.indexOf('='); overlay[kv.substring(0, i)] = kv.substring(i + 1) }
      h.overlays << overlay
      try { return body() } finally { h.overlays.remove(h.overlays.size() - 1) }
    }
    step(b, 'wrap') { Map a, Closure body ->
      assert a['$class'] == 'MaskPasswordsBuildWrapper'
      // A disabled plugin's wrapper class does not load: the step fails.
      if (!jenkins.model.Jenkins.get().plugins['mask-passwords']?.isActive()) throw new IllegalStateException('No known implementation of interface jenkins.tasks.SimpleBuildWrapper is named MaskPasswordsBuildWrapper')
      List<String> added = a.varPasswordPairs.collect { it.password as String }
      h.masks.addAll(added)
      try { return body() } finally { added.each { h.masks.remove(it) } }
    }
    step(b, 'dir') { String path, Closure body ->
      File before = h.cwd
      h.cwd = new File(path).absolute ? new File(path) : new File(before, path)
      h.cwd.mkdirs()
      try { return body() } finally { h.cwd = before }
    }
    step(b, 'deleteDir') { -> h.cwd.deleteDir() }
    ['withJenkinsOidc', 'jenkinsOidcToken', 'withAwsOidc', 'withKubernetesOidc', 'withVaultOidc', 'withAzureOidc', 'withGcpOidc'].each { name ->
      step(b, name) { Object... args -> h.load(name, b).invokeMethod('call', args) }
    }
    return b
  }

  /** A pipeline step: recorded with its arguments, then run. */
  private void step(Binding b, String name, Closure impl) {
    Harness h = this
    b.setVariable(name, { Object... args ->
      h.steps << [step: name, args: args.toList()]
      return impl.call(*args)
    })
  }

  Script load(String name, Binding b) {
    GroovyShell shell = new GroovyShell(this.class.classLoader, b)
    return shell.parse(new File(root, "vars/${name}.groovy"))
  }

  /** Runs a Jenkinsfile-like closure with the library's steps in scope, as this build's CPS thread. */
  Object pipeline(Closure jenkinsfile) {
    Binding b = binding()
    Closure c = (Closure) jenkinsfile.clone()
    c.delegate = new BindingDelegate(b)
    c.resolveStrategy = Closure.DELEGATE_FIRST
    try {
      return CpsThread.runAs(new CpsThread(new CpsFlowExecution(new FlowExecutionOwner(run))), c)
    } catch (Throwable t) {
      // As WorkflowRun ends a build: an AbortException is its message; anything else its stack trace.
      if (t instanceof hudson.AbortException) {
        append("ERROR: ${t.message}\n")
      } else {
        StringWriter trace = new StringWriter()
        t.printStackTrace(new PrintWriter(trace))
        append(trace.toString())
      }
      throw t
    }
  }
}

