package org.jenkinsci.plugins.workflow.libs
/**
 * Manage Jenkins > System > Global Trusted Pipeline Libraries (pipeline-groovy-lib's
 * GlobalLibraries: get() and getLibraries()). Tests set `libraries`.
 */
class GlobalLibraries {
  static final GlobalLibraries INSTANCE = new GlobalLibraries()
  List<LibraryConfiguration> libraries = []
  static GlobalLibraries get() { INSTANCE }
}
