import com.sun.net.httpserver.HttpServer

/**
 * An HTTP server on loopback that records every request it gets: the URL an
 * attacker would like the controller to send its client secret to.
 */
class CaptureServer {
  final HttpServer server
  final List<String> requests = Collections.synchronizedList([])

  CaptureServer() {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0)
    server.createContext('/') { exchange ->
      String body = exchange.requestBody.getText('UTF-8')
      requests << "${exchange.requestMethod} ${exchange.requestURI} ${exchange.requestHeaders} ${body}".toString()
      byte[] answer = '{"access_token":"captured","value":"captured"}'.getBytes('UTF-8')
      exchange.responseHeaders.add('Content-Type', 'application/json')
      exchange.sendResponseHeaders(200, answer.length)
      exchange.responseBody.withStream { it.write(answer) }
    }
    server.start()
  }

  String getUrl() { "http://127.0.0.1:${server.address.port}" }

  void stop() { server.stop(0) }
}
