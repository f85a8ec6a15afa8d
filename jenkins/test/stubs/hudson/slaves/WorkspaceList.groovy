package hudson.slaves
import hudson.FilePath
class WorkspaceList {
  /** As the real one: the temporary folder beside a workspace, "<ws>@tmp" (what pwd(tmp: true) gives). */
  static FilePath tempDir(FilePath ws) { ws.sibling(ws.name + '@tmp') }
}
