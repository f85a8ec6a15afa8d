package hudson.model
/** The members of hudson.model.Run the library reads. */
abstract class Run {
  abstract Job getParent()
  abstract int getNumber()
  abstract String getAbsoluteUrl()
  abstract List<Cause> getCauses()
  /** Actions attached to the build (SCMRevisionAction, the git plugin's BuildData...). */
  abstract List<Object> getAllActions()
  /** As the real one: the first cause of that type, or null. */
  Cause getCause(Class type) { getCauses().find { type.isInstance(it) } as Cause }
  List getActions(Class type) { getAllActions().findAll { type.isInstance(it) } }
  /** As the real one: the first action of that type, or null. */
  Object getAction(Class type) { getAllActions().find { type.isInstance(it) } }
}
