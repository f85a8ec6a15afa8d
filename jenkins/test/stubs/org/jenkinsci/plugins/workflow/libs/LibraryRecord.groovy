package org.jenkinsci.plugins.workflow.libs
/**
 * One library loaded by a build (pipeline-groovy-lib's LibraryRecord): its
 * configured name, the version actually loaded (the default, or an override
 * from @Library('name@version') when the configuration allows it), whether it
 * runs trusted (global) or sandboxed (folder), and the steps its vars/ defines.
 */
class LibraryRecord {
  final String name
  final String version
  final boolean trusted
  final Set<String> variables
  LibraryRecord(String name, String version, boolean trusted, Set<String> variables) {
    this.name = name; this.version = version; this.trusted = trusted; this.variables = variables
  }
}
