import java.lang.reflect.Constructor
import java.lang.reflect.Field
import java.lang.reflect.Member
import java.lang.reflect.Method
import java.lang.reflect.Modifier
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilerConfiguration

/**
 * Everything a Jenkinsfile can reach in the library: every class that src/
 * and vars/ compile to (closure and inner classes included) and every
 * constructor, method and field each declares, private ones included. In
 * Jenkins, sandboxed code may call any of them (script-security's
 * GroovyClassLoaderWhitelist over the trusted loader has no visibility check).
 *
 * Groovy generates the same plumbing into every class (meta-class access,
 * call-site caches, dispatch helpers); plumbing() recognises it by name so
 * that the reach test lists the library's own members one by one. Under
 * Jenkins the CPS transformer also adds ___cps___N members: the CPS bodies of
 * the same methods, with the same reach.
 */
class LibrarySurface {
  final List<Class> classes = []

  LibrarySurface(File root, ClassLoader parent) {
    File out = File.createTempDir('jenkins-oidc-surface', '')
    CompilerConfiguration config = new CompilerConfiguration()
    config.targetDirectory = out
    CompilationUnit unit = new CompilationUnit(config, null, new GroovyClassLoader(parent))
    ['src', 'vars'].each { dir ->
      new File(root, dir).eachFileRecurse { File f -> if (f.name.endsWith('.groovy')) unit.addSource(f) }
    }
    unit.compile()
    // Parent first: src/ classes resolve to the very classes the pipelines run; vars/ scripts load from `out`.
    URLClassLoader loader = new URLClassLoader([out.toURI().toURL()] as URL[], parent)
    out.eachFileRecurse { File f ->
      if (!f.name.endsWith('.class')) return
      String name = out.toPath().relativize(f.toPath()).toString().replace('/', '.').replace('\\', '.') - ~/\.class$/
      classes << loader.loadClass(name)
    }
    classes.sort { it.name }
  }

  Class byName(String name) { classes.find { it.name == name } }

  /** Every declared member: [signature:, member:]. */
  List<Map> members() {
    List<Map> all = []
    classes.each { Class c ->
      c.declaredConstructors.each { Constructor k -> all << [signature: "${c.name}#<init>(${names(k.parameterTypes)})".toString(), member: k] }
      c.declaredMethods.each { Method m -> all << [signature: "${c.name}#${m.name}(${names(m.parameterTypes)})".toString(), member: m] }
      c.declaredFields.each { Field f -> all << [signature: "${c.name}.${f.name}".toString(), member: f] }
    }
    return all
  }

  private static String names(Class[] types) { types.collect { it.simpleName }.join(', ') }

  /** The members Groovy writes into every class; none is written by us. */
  static boolean plumbing(Member m) {
    String n = m.name
    if (m instanceof Field) {
      return n in ['$staticClassInfo', '$staticClassInfo$', '__$stMC', 'metaClass', '$callSiteArray'] || n.startsWith('__timeStamp') || n ==~ '\\$const\\$\\d+'
    }
    if (m instanceof Method) {
      return m.synthetic || n in ['$getStaticMetaClass', 'getMetaClass', 'setMetaClass', 'invokeMethod', 'getProperty', 'setProperty',
                                  '$getCallSiteArray', '$createCallSiteArray', '__$swapInit', '$getLookup'] ||
             n ==~ 'this\\$dist\\$(invoke|get|set)\\$\\d+' || n ==~ 'super\\$\\d+\\$.+' || n ==~ 'pfaccess\\$.+'
    }
    return false
  }

  static boolean isStatic(Member m) { Modifier.isStatic(m.modifiers) }
}
