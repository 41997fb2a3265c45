/**
 * A bare TCP server on 127.0.0.1 that reads HTTP/1.1 request heads and lets a
 * test write whatever bytes it likes in reply: malformed status lines, bodies
 * shorter or longer than their Content-Length, broken chunked encoding, slow
 * drips, silence. An HTTP library would correct or refuse most of these.
 */
import { createServer, type Server, type Socket } from 'node:net';

/** The request line and headers of one request; header names are lower-cased. */
export interface RawRequest {
  method: string;
  /** Request target as sent, such as `/app/sessions?limit=100`. */
  target: string;
  headers: Record<string, string>;
  /** Position of the request among all requests to this server, from 0. */
  index: number;
}

/** Writes the reply to one request; it may write nothing and leave the socket open. */
export type RawHandler = (request: RawRequest, socket: Socket) => void | Promise<void>;

export interface RawServer {
  /** Origin such as `http://127.0.0.1:40123`. */
  url: string;
  port: number;
  /** Every request received, in order. */
  requests: RawRequest[];
  /** Destroys every open connection and stops listening. */
  close(): Promise<void>;
}

/** Largest request head read; a longer one closes the connection. */
const MAX_HEAD_BYTES = 64 * 1024;

/** Starts a raw server; each request head that arrives is passed to `handler`. */
export async function startRawServer(handler: RawHandler): Promise<RawServer> {
  const requests: RawRequest[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);

    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        const request = parseHead(head, requests.length);
        requests.push(request);
        // A handler that throws closes its connection; the client then sees a reset.
        void Promise.resolve()
          .then(() => handler(request, socket))
          .catch(() => socket.destroy());
      }
      if (buffered.length > MAX_HEAD_BYTES) socket.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('raw server has no TCP address');

  return {
    url: `http://127.0.0.1:${address.port}`,
    port: address.port,
    requests,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

function parseHead(head: string, index: number): RawRequest {
  const [requestLine = '', ...headerLines] = head.split('\r\n');
  const [method = '', target = ''] = requestLine.split(' ');
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { method, target, headers, index };
}

export interface RawResponse {
  status: number;
  /** Reason phrase; `OK` by default. */
  reason?: string;
  /** Header lines in order; a name may repeat. */
  headers?: [string, string][];
  body?: string | Buffer;
  /**
   * Adds `content-length` with the byte length of the body (default true).
   * Set false to send a body that ends when the connection closes.
   */
  contentLength?: boolean;
  /** Closes the connection after the body (default false). */
  close?: boolean;
}

/** Writes a complete response. */
export function writeResponse(socket: Socket, response: RawResponse): void {
  const body = typeof response.body === 'string' ? Buffer.from(response.body, 'utf8') : (response.body ?? Buffer.alloc(0));
  const headers = [...(response.headers ?? [])];
  if (response.contentLength !== false) headers.push(['content-length', String(body.length)]);
  if (response.close === true || response.contentLength === false) headers.push(['connection', 'close']);

  socket.write(statusAndHeaders(response.status, response.reason ?? 'OK', headers));
  socket.write(body);
  if (response.close === true || response.contentLength === false) socket.end();
}

/** Writes the status line and headers only; the caller writes the body. */
export function writeHead(socket: Socket, status: number, headers: [string, string][], reason = 'OK'): void {
  socket.write(statusAndHeaders(status, reason, headers));
}

/** Writes one chunk of a chunked body (RFC 9112, section 7.1); an empty chunk ends the body. */
export function writeChunk(socket: Socket, data: string | Buffer): boolean {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return socket.write(Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`, 'latin1'), bytes, Buffer.from('\r\n', 'latin1')]));
}

/** Writes a 200 JSON response with a Content-Length. */
export function writeJson(socket: Socket, value: unknown, status = 200, extraHeaders: [string, string][] = []): void {
  writeResponse(socket, { status, headers: [['content-type', 'application/json'], ...extraHeaders], body: JSON.stringify(value) });
}

/** Writes `bytes` one byte every `intervalMs` until they run out or the socket closes. */
export async function drip(socket: Socket, bytes: Buffer, intervalMs: number): Promise<void> {
  for (const byte of bytes) {
    if (socket.destroyed) return;
    socket.write(Buffer.of(byte));
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function statusAndHeaders(status: number, reason: string, headers: [string, string][]): string {
  return `HTTP/1.1 ${status} ${reason}\r\n${headers.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`;
}
