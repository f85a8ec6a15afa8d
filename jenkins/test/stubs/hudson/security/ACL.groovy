package hudson.security
class ACL {
  /** The SYSTEM authentication (Spring Security flavour). */
  static final Object SYSTEM2 = new Object() { String toString() { 'SYSTEM2' } }
}
