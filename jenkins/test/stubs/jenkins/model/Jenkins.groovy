package jenkins.model
class Jenkins {
  static final Jenkins INSTANCE = new Jenkins()
  List globalNodeProperties = []
  /** Installed plugins by short name (the stand-in for hudson.PluginManager). */
  Map<String, Object> plugins = ['mask-passwords': 'installed']
  Object getPluginManager() { [getPlugin: { String name -> plugins[name] }] as Expando }
  static Jenkins get() { INSTANCE }
}
