package org.jenkinsci.plugins.workflow.libs
/** What LibraryAdder attaches to a build: the libraries it loaded (getLibraries()). */
class LibrariesAction {
  final List<LibraryRecord> libraries
  LibrariesAction(List<LibraryRecord> libraries) { this.libraries = libraries }
}
