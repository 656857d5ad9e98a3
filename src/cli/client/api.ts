// The helper's view of the server: JSON over HTTP with a bearer token, and
// errors turned into one line a person can act on.

export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    message: string,
    readonly status: number | null = null,
    /** The problem's `code`, when the server gave one (e.g. `step_up_required`). */
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export const LOGIN_HINT = 'your session has expired or is missing: run jit-ssh login';

export interface Api {
  readonly server: string;
  get<T = any>(path: string): Promise<T>;
  post<T = any>(path: string, body?: unknown): Promise<T>;
}

export function createApi(server: string, token: string | null, fetchImpl: typeof fetch = fetch): Api {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetchImpl(server + path, {
        method,
        headers: { accept: 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new ClientError(`cannot reach ${server}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    const text = await res.text();
    let data: any = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      throw new ClientError(`${server} answered ${res.status} with something that is not JSON; is JIT_SSH_SERVER right?`, res.status);
    }
    // A sign-in's own refusal, or groups too old to use, is told in the server's words; other 401s mean the session is gone.
    const ownWords = path === '/v1/auth/login' || path.startsWith('/v1/auth/sso') || data?.code === 'sign_in_required';
    if (res.status === 401 && !ownWords) throw new ClientError(LOGIN_HINT, 401);
    if (!res.ok) throw new ClientError(data?.detail ?? `${server} answered ${res.status}`, res.status, typeof data?.code === 'string' ? data.code : null);
    return data as T;
  }
  return { server, get: (p) => call('GET', p), post: (p, b) => call('POST', p, b ?? {}) };
}
