// The API client: same-origin requests, with `Authorization: Bearer <key>` once the user has
// given a key. A 401 asks for the key (once, shared by concurrent callers) and retries.
// Images behind the key cannot be plain <img src> URLs, so they are fetched as blobs.
import { h } from './dom.js';

const KEY_STORAGE = 'unichar.apiKey';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

let apiKey: string | null = localStorage.getItem(KEY_STORAGE);
let pendingKey: Promise<void> | null = null;
const keyListeners = new Set<() => void>();

export function hasKey(): boolean {
  return apiKey !== null;
}
export function onKeyChange(f: () => void): void {
  keyListeners.add(f);
}
export function setKey(key: string | null): void {
  apiKey = key && key.trim() ? key.trim() : null;
  if (apiKey) localStorage.setItem(KEY_STORAGE, apiKey);
  else localStorage.removeItem(KEY_STORAGE);
  blobCache.clear();
  for (const f of keyListeners) f();
}

export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return apiKey ? { ...extra, authorization: `Bearer ${apiKey}` } : extra;
}

/** Shows the key dialog; resolves when a key was entered. */
export function askForKey(reason: string): Promise<void> {
  pendingKey ??= new Promise<void>((resolve) => {
    const input = h('input', { type: 'password', id: 'api-key-input', name: 'api-key', autocomplete: 'current-password', required: true });
    const dialog = h(
      'dialog',
      { class: 'key-dialog', 'aria-labelledby': 'key-title' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'key-title' }, 'API key required'),
        h('p', {}, reason),
        h('label', { for: 'api-key-input' }, 'API key'),
        input,
        h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Use key')),
      ),
    );
    dialog.addEventListener('cancel', (e) => e.preventDefault());
    dialog.addEventListener('close', () => {
      if (!input.value.trim()) {
        dialog.showModal();
        return;
      }
      setKey(input.value);
      dialog.remove();
      pendingKey = null;
      resolve();
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
  return pendingKey;
}

/** fetch with the key; a 401 asks for a key and tries again. */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  for (;;) {
    const res = await fetch(path, { ...init, headers: authHeaders((init.headers as Record<string, string> | undefined) ?? {}) });
    if (res.status !== 401) return res;
    const msg = await errorMessage(res);
    await askForKey(apiKey ? `The server refused the key: ${msg}` : 'This server needs an API key. It is sent as Authorization: Bearer.');
  }
}

export async function errorMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    return body.error?.message ?? `${res.status} ${res.statusText}`;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}

export async function apiJson<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await apiFetch(path, init);
  if (!res.ok) {
    let code: string | null = null;
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { message?: string; code?: string } };
      message = body.error?.message ?? message;
      code = body.error?.code ?? null;
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, message, code);
  }
  return (await res.json()) as T;
}

const blobCache = new Map<string, Promise<string>>();

/** An object URL for an image: data: and blob: URLs as they are, server URLs fetched with the key. */
export function imageUrl(url: string): Promise<string> {
  if (/^(data|blob):/.test(url)) return Promise.resolve(url);
  let p = blobCache.get(url);
  if (!p) {
    p = apiFetch(url).then(async (res) => {
      if (!res.ok) throw new ApiError(res.status, await errorMessage(res));
      return URL.createObjectURL(await res.blob());
    });
    p.catch(() => blobCache.delete(url));
    blobCache.set(url, p);
  }
  return p;
}

/** An <img> whose source is loaded through `imageUrl`. */
export function authImage(url: string, alt: string, cls = ''): HTMLImageElement {
  const img = h('img', { alt, class: cls, decoding: 'async' });
  imageUrl(url).then(
    (src) => (img.src = src),
    () => img.classList.add('broken'),
  );
  return img;
}

// ---- API shapes used by the pages ----

export interface CharacterSummary {
  id: string;
  name: string;
  avatar_url: string | null;
}
export interface CharacterDetail extends CharacterSummary {
  nickname: string | null;
  category: string;
  description: string;
  opening: string;
}
export interface ChatSummary {
  id: string;
  character_id: string;
  title: string | null;
  updated_at: number;
}
export interface StoredMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
  images: { url: string }[];
}
export interface Job {
  id: string;
  kind: string;
  status: string;
  character_id: string | null;
  progress: unknown;
  error: string | null;
  created_at: number;
  updated_at: number;
}
