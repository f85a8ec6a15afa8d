package hudson
/**
 * hudson.FilePath on a local disk: the members the library uses, with the
 * real class's behaviour (final class; chmod is a no-op where the platform has
 * no POSIX modes; deleteRecursive removes links, never what they point to).
 */
final class FilePath implements Serializable {
  /** Test only: every write(), with the mode its folder had at that moment (what another user could see). */
  static final List<Map<String, String>> writes = Collections.synchronizedList([])
  private final File file
  FilePath(File file) { this.file = file }
  String getRemote() { file.path }
  String getName() { file.name }
  FilePath child(String rel) { new FilePath(new File(file, rel)) }
  FilePath sibling(String rel) { new FilePath(new File(file.parentFile, rel)) }
  /** The parent folder, or null at the root (as the real one). */
  FilePath getParent() { file.parentFile == null ? null : new FilePath(file.parentFile) }
  boolean exists() { file.exists() }
  boolean isUnix() { File.separatorChar == '/' as char }
  void mkdirs() {
    if (!file.mkdirs() && !file.directory) throw new IOException("Failed to mkdirs: ${file}")
  }
  void chmod(int mask) {
    if (!isUnix()) return
    java.nio.file.Files.setPosixFilePermissions(file.toPath(), permissions(mask))
  }
  void write(String content, String encoding) {
    String folderMode = isUnix() ? java.nio.file.attribute.PosixFilePermissions.toString(java.nio.file.Files.getPosixFilePermissions(file.parentFile.toPath())) : ''
    writes << [path: file.path, folderMode: folderMode]
    file.setText(content, encoding)
  }
  String readToString() { file.getText('UTF-8') }
  void deleteRecursive() {
    java.nio.file.Path p = file.toPath()
    if (!java.nio.file.Files.exists(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return
    if (java.nio.file.Files.isSymbolicLink(p) || !file.directory) { java.nio.file.Files.delete(p); return }
    file.listFiles().each { new FilePath(it).deleteRecursive() }
    java.nio.file.Files.delete(p)
  }
  String toString() { file.path }
  private static Set<java.nio.file.attribute.PosixFilePermission> permissions(int mask) {
    Set<java.nio.file.attribute.PosixFilePermission> out = EnumSet.noneOf(java.nio.file.attribute.PosixFilePermission)
    java.nio.file.attribute.PosixFilePermission.values().eachWithIndex { p, i -> if (mask & (0400 >> i)) out << p }
    return out
  }
}
