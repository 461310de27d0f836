// HTTP/1.1 over a unix socket, the part the agent API's clients need: one request per exchange,
// answers framed by Content-Length, chunked transfer coding or the end of the connection, and
// kept-alive connections reused. node:http does the same with far more start-up work, which a CNI
// plugin process (one ADD, then exit) pays on every call.
import { connect, type Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';

export interface Http1Request {
  method: string;
  /** Path and query, already encoded. */
  target: string;
  headers: Record<string, string>;
  body?: string;
  /** Idle time on the connection before the exchange fails; 0 waits forever (streams). */
  timeoutMs: number;
  signal?: AbortSignal;
  /** The error when nothing answers for `timeoutMs`. */
  timeoutError: () => Error;
}

export interface Http1Response {
  status: number;
  headers: Record<string, string>;
  /** The payload, de-chunked; fails when the connection breaks before it is complete. */
  body: Readable;
}

/** The connection could not be made (the error of connect(2), code included). */
export class ConnectError extends Error {
  constructor(override readonly cause: NodeJS.ErrnoException) {
    super(cause.message, { cause });
  }
}

const CRLF = Buffer.from('\r\n');
const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD_BYTES = 64 * 1024;

type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' };

/**
 * Reads one response off a connection: head, then the body by its framing. Bytes past the end of
 * the response mean the server broke the protocol; the connection is then not reused.
 */
class ResponseParser {
  private buf: Buffer = Buffer.alloc(0);
  private framing?: Framing;
  /** Chunked bodies: -1 a size line is next, -2 trailers, 0 the CRLF after a chunk's data, >0 data bytes left. */
  private chunkLeft = -1;
  done = false;

  constructor(
    private readonly method: string,
    private readonly onHead: (status: number, headers: Record<string, string>) => void,
    private readonly onData: (chunk: Buffer) => void,
  ) {}

  /** Whether the connection may carry another request once this response is done. */
  reusable = false;

  /** Feeds bytes; throws on a malformed response. */
  push(data: Buffer): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data]);
    while (!this.done) {
      if (this.framing === undefined) {
        if (!this.head()) return;
        continue;
      }
      if (!this.body()) return;
    }
    if (this.buf.length > 0) throw new Error(`${this.buf.length} bytes after the end of the response`);
  }

  /** The connection ended: the end of a close-framed body, otherwise a truncated response. */
  end(): void {
    if (this.done) return;
    if (this.framing?.kind === 'close') {
      this.done = true;
      return;
    }
    throw new Error(this.framing === undefined ? 'connection closed before the response head' : 'connection closed in the middle of the response body');
  }

  private head(): boolean {
    const end = this.buf.indexOf(HEAD_END);
    if (end < 0) {
      if (this.buf.length > MAX_HEAD_BYTES) throw new Error(`response head larger than ${MAX_HEAD_BYTES} bytes`);
      return false;
    }
    const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    this.buf = this.buf.subarray(end + HEAD_END.length);
    const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
    if (m === null) throw new Error(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 100))}`);
    const status = Number(m[2]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) throw new Error(`bad header line ${JSON.stringify(line.slice(0, 100))}`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    // Interim answers (100 Continue) come before the real one.
    if (status >= 100 && status < 200) return true;
    const chunked = /(?:^|,)\s*chunked\s*$/i.test(headers['transfer-encoding'] ?? '');
    const length = headers['content-length'];
    if (this.method === 'HEAD' || status === 204 || status === 304) this.framing = { kind: 'none' };
    else if (chunked) this.framing = { kind: 'chunked' };
    else if (length !== undefined) {
      if (!/^\d+$/.test(length)) throw new Error(`bad Content-Length ${JSON.stringify(length)}`);
      this.framing = { kind: 'length', left: Number(length) };
    } else this.framing = { kind: 'close' };
    this.reusable = m[1] === '1' && this.framing.kind !== 'close' && !/(?:^|,)\s*close\s*(?:,|$)/i.test(headers.connection ?? '');
    this.onHead(status, headers);
    if (this.framing.kind === 'none' || (this.framing.kind === 'length' && this.framing.left === 0)) this.done = true;
    return true;
  }

  /** Consumes what it can of the body; false when it needs more bytes. */
  private body(): boolean {
    const f = this.framing as Framing;
    if (f.kind === 'close') {
      if (this.buf.length > 0) this.onData(this.buf);
      this.buf = Buffer.alloc(0);
      return false;
    }
    if (f.kind === 'length') {
      if (this.buf.length === 0) return false;
      const take = this.buf.subarray(0, f.left);
      this.buf = this.buf.subarray(take.length);
      f.left -= take.length;
      this.onData(take);
      if (f.left === 0) this.done = true;
      return true;
    }
    return this.chunk();
  }

  // chunk = size [;ext] CRLF data CRLF; the last chunk has size 0, then trailers and CRLF.
  private chunk(): boolean {
    if (this.chunkLeft === -1) {
      const eol = this.buf.indexOf(CRLF);
      if (eol < 0) return false;
      const sizeText = this.buf.subarray(0, eol).toString('latin1').split(';')[0]?.trim() ?? '';
      if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new Error(`bad chunk size ${JSON.stringify(sizeText.slice(0, 20))}`);
      this.buf = this.buf.subarray(eol + CRLF.length);
      this.chunkLeft = parseInt(sizeText, 16);
      if (this.chunkLeft === 0) this.chunkLeft = -2;
      return true;
    }
    if (this.chunkLeft === -2) {
      // Trailer lines until an empty one.
      const eol = this.buf.indexOf(CRLF);
      if (eol < 0) return false;
      this.buf = this.buf.subarray(eol + CRLF.length);
      if (eol === 0) this.done = true;
      return true;
    }
    if (this.chunkLeft > 0) {
      if (this.buf.length === 0) return false;
      const take = this.buf.subarray(0, this.chunkLeft);
      this.buf = this.buf.subarray(take.length);
      this.chunkLeft -= take.length;
      this.onData(take);
      return true;
    }
    if (this.buf.length < CRLF.length) return false;
    if (!this.buf.subarray(0, CRLF.length).equals(CRLF)) throw new Error('chunk data not followed by CRLF');
    this.buf = this.buf.subarray(CRLF.length);
    this.chunkLeft = -1;
    return true;
  }
}

// A request target of visible ASCII only, and header fields without CR/LF: nothing taken from
// input can start a second request on the connection.
const TARGET = /^\/[\x21-\x7e]*$/;
const FIELD = /^[^\r\n]*$/;

/** Connections to one unix socket; a kept-alive one waits, unreferenced, for the next request. */
export class Http1Pool {
  /** Idle connections, each with the listener that drops it when the server closes it. */
  private readonly idle = new Map<Socket, () => void>();

  constructor(readonly socketPath: string) {}

  /** Sends the request; resolves once the response head has arrived. */
  async exchange(req: Http1Request): Promise<Http1Response> {
    if (!TARGET.test(req.target)) throw new TypeError(`${req.method} ${JSON.stringify(req.target)}: request path holds spaces or control characters`);
    for (const [k, v] of Object.entries(req.headers)) {
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(k) || !FIELD.test(v)) throw new TypeError(`${req.method} ${req.target}: invalid header ${JSON.stringify(k)}`);
    }
    const socket = this.takeIdle() ?? (await this.connect());
    return this.run(socket, req);
  }

  /** Closes the kept-alive connections. */
  close(): void {
    for (const s of this.idle.keys()) s.destroy();
    this.idle.clear();
  }

  private takeIdle(): Socket | undefined {
    for (const [s, drop] of this.idle) {
      this.idle.delete(s);
      s.off('end', drop).off('error', drop).off('data', drop);
      if (!s.destroyed && s.readyState === 'open') return s;
      s.destroy();
    }
    return undefined;
  }

  private connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s = connect(this.socketPath);
      s.once('connect', () => {
        s.off('error', reject);
        resolve(s);
      });
      s.once('error', (err: NodeJS.ErrnoException) => reject(new ConnectError(err)));
    });
  }

  private run(socket: Socket, req: Http1Request): Promise<Http1Response> {
    socket.ref();
    const body = new PassThrough();
    // An error reaches the reader through its iteration, also when it comes before the reader does.
    body.on('error', () => undefined);
    return new Promise<Http1Response>((resolve, reject) => {
      let answered = false;
      const fail = (err: Error) => {
        cleanup();
        socket.destroy();
        if (answered) body.destroy(err);
        else reject(err);
      };
      const parser = new ResponseParser(
        req.method,
        (status, headers) => {
          answered = true;
          resolve({ status, headers, body });
        },
        (chunk) => body.write(chunk),
      );
      const finish = () => {
        cleanup();
        body.end();
        if (parser.reusable && !socket.destroyed) this.park(socket);
        else socket.destroy();
      };
      const onData = (data: Buffer) => {
        try {
          parser.push(data);
        } catch (err) {
          fail(new Error(`${req.method} ${req.target}: bad response: ${(err as Error).message}`));
          return;
        }
        if (parser.done) finish();
      };
      const onEnd = () => {
        try {
          parser.end();
        } catch (err) {
          fail(new Error(`${req.method} ${req.target}: ${(err as Error).message}`));
          return;
        }
        parser.reusable = false;
        finish();
      };
      const onError = (err: Error) => fail(err);
      const onTimeout = () => fail(req.timeoutError());
      const onAbort = () => fail(req.signal?.reason instanceof Error ? req.signal.reason : new Error('aborted'));
      const cleanup = () => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('error', onError);
        socket.off('timeout', onTimeout);
        socket.setTimeout(0);
        req.signal?.removeEventListener('abort', onAbort);
      };
      if (req.signal?.aborted) {
        onAbort();
        return;
      }
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('error', onError);
      if (req.timeoutMs > 0) {
        socket.setTimeout(req.timeoutMs);
        socket.on('timeout', onTimeout);
      }
      req.signal?.addEventListener('abort', onAbort, { once: true });
      const headers = { Host: 'localhost', ...req.headers, ...(req.body === undefined ? {} : { 'Content-Length': String(Buffer.byteLength(req.body)) }) };
      const head = `${req.method} ${req.target} HTTP/1.1\r\n${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}\r\n`;
      socket.write(req.body === undefined ? head : head + req.body);
    });
  }

  /** Keeps the connection for the next request; one the server closes (or talks on) meanwhile is dropped. */
  private park(socket: Socket): void {
    const drop = () => {
      this.idle.delete(socket);
      socket.destroy();
    };
    socket.once('end', drop).once('error', drop).once('data', drop);
    socket.unref();
    this.idle.set(socket, drop);
  }
}
