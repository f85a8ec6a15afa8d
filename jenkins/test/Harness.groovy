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
  List<Map<String, String>> overlays = []
  List<String> masks = []
  File cwd
  def run
  /** Every step invocation: [step: name, args: [...]], in order. */
  final List<Map> steps = []

  Harness(File root, run, Map<String, String> buildEnv = [:]) {
    this.root = root
    this.run = run
    workspace = File.createTempDir('jenkins-oidc-ws', '')
    new File(workspace.path + '@tmp').mkdirs()
    cwd = workspace
    env.putAll(buildEnv)
  }

  Map<String, String> currentEnv() {
    Map<String, String> all = [:] + System.getenv() + env
    overlays.each { o -> o.each { k, v -> if (v) all[k] = v else all.remove(k) } }
    return all
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
    Map a = arg instanceof Map ? arg : [script: arg]
    ProcessBuilder pb = new ProcessBuilder('/bin/sh', '-c', a.script as String)
    pb.directory(cwd)
    pb.environment().clear()
    pb.environment().putAll(currentEnv())
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
    step(b, 'getContext') { Class type -> type == FilePath ? new FilePath(h.cwd) : null }
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
    ['withJenkinsOidc', 'jenkinsOidcToken', 'withAwsOidc'].each { name ->
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
    return CpsThread.runAs(new CpsThread(new CpsFlowExecution(new FlowExecutionOwner(run))), c)
  }
}

