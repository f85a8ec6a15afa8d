package hudson
/**
 * hudson.ProxyConfiguration.open(URL): a connection through the controller's
 * proxy settings (Manage Jenkins > System > HTTP Proxy), honouring its
 * no-proxy hosts. No proxy is configured here; `opened` lets a test see that
 * every connection went through it.
 */
class ProxyConfiguration {
  static final List<String> opened = Collections.synchronizedList([])
  static URLConnection open(URL url) throws IOException {
    opened << url.toString()
    return url.openConnection()
  }
}
