import com.sun.net.httpserver.HttpServer

/**
 * An HTTP server on loopback that records every request it gets: the URL an
 * attacker would like the controller to send its client secret to, or, set
 * as the controller's own service URL, a witness of everything the controller
 * sends. Each request is [method:, path:, authorization:, body:].
 */
class CaptureServer {
  final HttpServer server
  final List<Map<String, String>> requests = Collections.synchronizedList([])

  CaptureServer() {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0)
    server.createContext('/') { exchange ->
      String body = exchange.requestBody.getText('UTF-8')
      requests << [method: exchange.requestMethod, path: exchange.requestURI.toString(),
                   authorization: exchange.requestHeaders.getFirst('Authorization'), body: body]
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
