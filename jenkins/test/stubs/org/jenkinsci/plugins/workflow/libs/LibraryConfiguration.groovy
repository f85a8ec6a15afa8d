package org.jenkinsci.plugins.workflow.libs
/**
 * One library's configuration, with pipeline-groovy-lib's defaults:
 * allowVersionOverride is true unless an administrator unticks it, and
 * allowBRANCH_NAME false (LibraryConfiguration.java).
 */
class LibraryConfiguration {
  final String name
  String defaultVersion
  boolean implicit = false
  boolean allowVersionOverride = true
  boolean allowBRANCH_NAME = false
  LibraryConfiguration(String name) { this.name = name }
  boolean isAllowBRANCH_NAME() { allowBRANCH_NAME }
}
