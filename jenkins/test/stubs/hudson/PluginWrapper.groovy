package hudson
/**
 * An installed plugin as PluginManager.getPlugin(name) returns it: installed
 * but disabled plugins are returned too, with isActive() false.
 */
class PluginWrapper {
  final boolean active
  PluginWrapper(boolean active) { this.active = active }
  boolean isActive() { active }
}
