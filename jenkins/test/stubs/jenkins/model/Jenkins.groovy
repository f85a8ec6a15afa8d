package jenkins.model
import hudson.PluginWrapper
class Jenkins {
  static final Jenkins INSTANCE = new Jenkins()
  List globalNodeProperties = []
  /** Manage Jenkins > System > Jenkins URL; null until an administrator sets it. */
  String rootUrl = 'https://jenkins.example.com/'
  /** Installed plugins by short name (the stand-in for hudson.PluginManager). */
  Map<String, PluginWrapper> plugins = ['mask-passwords': new PluginWrapper(true)]
  Object getPluginManager() { [getPlugin: { String name -> plugins[name] }] as Expando }
  static Jenkins get() { INSTANCE }
}
