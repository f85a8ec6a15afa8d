// Requests Node's HTTP parser refuses before Koa ever sees them (a malformed
// Content-Length, smuggling attempts, 100 KB of headers) used to get an empty
// answer. They get the same JSON error shape as everything else, where the
// socket can still carry one, and the connection is closed.
import type { Socket } from 'node:net';

function answer(status: number, reason: string, description: string): string {
  const body = JSON.stringify({ error: 'invalid_request', error_description: description });
  return [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    'Cache-Control: no-store',
    'Connection: close',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

export function onClientError(err: Error & { code?: string }, socket: Socket): void {
  // A peer that went away, or a socket already answering: nothing to say to it.
  if (err.code === 'ECONNRESET' || !socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
    socket.destroy();
    return;
  }
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
  socket.end(
    tooLarge
      ? answer(431, 'Request Header Fields Too Large', 'the request headers are too large')
      : timeout
        ? answer(408, 'Request Timeout', 'the request took too long to arrive')
        : answer(400, 'Bad Request', 'the HTTP request is malformed'),
  );
}
