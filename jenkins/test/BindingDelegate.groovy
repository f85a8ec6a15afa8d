/** Lets a Jenkinsfile closure call the steps held in the binding. */
class BindingDelegate {
  private final Binding b
  BindingDelegate(Binding b) { this.b = b }
  Object invokeMethod(String name, Object args) {
    // Unknown names fall through to the closure's owner (the test script).
    if (!b.hasVariable(name)) throw new MissingMethodException(name, BindingDelegate, args as Object[])
    def step = b.getVariable(name)
    return (step as Closure).call(*(args as Object[]))
  }
  Object getProperty(String name) {
    if (!b.hasVariable(name)) throw new MissingPropertyException(name, BindingDelegate)
    b.getVariable(name)
  }
}
