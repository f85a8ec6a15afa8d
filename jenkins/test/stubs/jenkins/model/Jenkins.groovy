package jenkins.model
class Jenkins {
  static final Jenkins INSTANCE = new Jenkins()
  List globalNodeProperties = []
  static Jenkins get() { INSTANCE }
}
