// Every error the server sends has one shape, the OpenAI error object
// (`{error: {message, type, param, code}}`), built by one function: `errorBody`. Handlers throw
// `ApiError`; the app's error handler turns anything thrown (zod, Fastify, engine, data) into it.
import { ZodError, type ZodIssue } from 'zod';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = status === 401 ? 'authentication_error' : status === 404 ? 'not_found_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The one place the error shape is written. */
export function errorBody(e: ApiError): ErrorBody {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** `messages[0].content[1].image_url.url`: the form OpenAI clients and people read. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out;
}

/** The issue deepest in the request: a bad `messages[2].content[0].text` says more than
 * "messages[2].content: invalid input" (zod reports union failures at the union's own path). */
function deepestIssue(issues: readonly ZodIssue[]): ZodIssue {
  let best = issues[0]!;
  for (const i of issues) {
    let cand = i;
    if (i.code === 'invalid_union') {
      // Prefer the branch that got furthest (a part with the right `type` but a bad field).
      const nested = i.unionErrors.flatMap((u) => u.issues).filter((n) => !(n.code === 'invalid_literal' && n.path[n.path.length - 1] === 'type'));
      if (nested.length) cand = deepestIssue(nested);
    }
    if (cand.path.length > best.path.length) best = cand;
  }
  return best;
}

export function fromZod(e: ZodError, prefix: (string | number)[] = []): ApiError {
  const i = deepestIssue(e.issues);
  const param = formatPath([...prefix, ...i.path]);
  return new ApiError(400, param ? `${param}: ${i.message}` : i.message, 'invalid_request_error', param || null, 'invalid_value');
}

/** Fastify's own 4xx codes → what a client reads (its own messages name Fastify internals). */
const FRAMEWORK: Record<string, { code: string; message: (m: string) => string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large', message: () => 'request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', message: () => 'unsupported content type: send application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_json', message: () => 'the body is empty but the content type is application/json' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json', message: () => 'the body is not valid JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'invalid_body', message: () => 'the body does not match its Content-Length' },
  FST_ERR_BAD_URL: { code: 'invalid_url', message: () => 'the request URL is not validly percent-encoded' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'url_too_long', message: () => 'a path segment of the request URL is longer than 100 characters' },
  FST_ERR_CTP_INVALID_CONTENT_TYPE: { code: 'unsupported_media_type', message: () => 'the Content-Type header is not valid' },
};

/** Anything thrown → ApiError. Fastify's own errors carry `statusCode` and `code`; nothing else
 * thrown reaches a client's message (it may hold paths or JavaScript internals). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof ZodError) return fromZod(e);
  const err = e as { statusCode?: unknown; code?: unknown; message?: unknown; name?: unknown };
  if (err && typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
    const code = typeof err.code === 'string' ? err.code : '';
    const known = FRAMEWORK[code];
    if (known) return new ApiError(err.statusCode, known.message(String(err.message)), undefined, null, known.code);
    return new ApiError(err.statusCode, code.startsWith('FST_ERR_CTP') ? 'the request body could not be read' : 'bad request', undefined, null, code.startsWith('FST_ERR_CTP') ? 'invalid_body' : 'bad_request');
  }
  if (err && err.name === 'SyntaxError') return new ApiError(400, 'the body is not valid JSON', 'invalid_request_error', null, 'invalid_json');
  return new ApiError(500, 'internal server error', 'server_error', null, null);
}

/** Errors before any request exists (malformed HTTP, header or body timeouts): a raw HTTP
 * response in the same error shape, for Fastify's clientErrorHandler. */
export function clientErrorResponse(err: { code?: unknown }): string {
  const [status, reason, message, code] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request headers or body did not arrive in time', 'request_timeout']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'the request headers are too large', 'headers_too_large']
        : [400, 'Bad Request', 'malformed HTTP request', 'bad_request'];
  const body = JSON.stringify(errorBody(new ApiError(status, message, 'invalid_request_error', null, code)));
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
