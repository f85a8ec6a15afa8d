import hudson.model.Cause

/**
 * Runs the library's vars/ scripts the way a pipeline would, with stand-ins
 * for the pipeline steps: `sh` really runs /bin/sh, files are really written,
 * masking behaves as the Mask Passwords plugin documents (each masked value
 * shows as ******** in the log). The token service is the real one.
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
    overlays.each { all.putAll(it) }
    return all
  }

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
    b.setVariable('currentBuild', [rawBuild: run, number: run.number])
    b.setVariable('sh', { arg -> h.sh(arg) })
    b.setVariable('isUnix', { -> true })
    b.setVariable('echo', { String m -> h.append(m + '\n') })
    b.setVariable('error', { String m -> throw new PipelineError(m) })
    b.setVariable('pwd', { Map a = [:] -> a.tmp ? h.workspace.path + '@tmp' : h.cwd.path })
    b.setVariable('writeFile', { Map a ->
      File f = new File(a.file as String).absolute ? new File(a.file as String) : new File(h.cwd, a.file as String)
      f.parentFile.mkdirs()
      f.setText(a.text as String, 'UTF-8')
    })
    b.setVariable('libraryResource', { String path -> new File(h.root, "resources/${path}").getText('UTF-8') })
    b.setVariable('withEnv', { List<String> vars, Closure body ->
      Map<String, String> overlay = [:]
      vars.each { String kv -> int i = kv.indexOf('='); overlay[kv.substring(0, i)] = kv.substring(i + 1) }
      h.overlays << overlay
      try { return body() } finally { h.overlays.remove(h.overlays.size() - 1) }
    })
    b.setVariable('wrap', { Map a, Closure body ->
      assert a['$class'] == 'MaskPasswordsBuildWrapper'
      List<String> added = a.varPasswordPairs.collect { it.password as String }
      h.masks.addAll(added)
      try { return body() } finally { added.each { h.masks.remove(it) } }
    })
    b.setVariable('dir', { String path, Closure body ->
      File before = h.cwd
      h.cwd = new File(path).absolute ? new File(path) : new File(before, path)
      h.cwd.mkdirs()
      try { return body() } finally { h.cwd = before }
    })
    b.setVariable('deleteDir', { -> h.cwd.deleteDir() })
    ['withJenkinsOidc', 'jenkinsOidcToken', 'withAwsOidc'].each { name ->
      b.setVariable(name, { Object... args -> h.load(name, b).invokeMethod('call', args) })
    }
    return b
  }

  Script load(String name, Binding b) {
    GroovyShell shell = new GroovyShell(this.class.classLoader, b)
    return shell.parse(new File(root, "vars/${name}.groovy"))
  }

  /** Runs a Jenkinsfile-like closure with the library's steps in scope. */
  Object pipeline(Closure jenkinsfile) {
    Binding b = binding()
    Closure c = (Closure) jenkinsfile.clone()
    c.delegate = new BindingDelegate(b)
    c.resolveStrategy = Closure.DELEGATE_FIRST
    return c()
  }
}

