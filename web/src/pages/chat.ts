// Chat with one character: streamed replies (SSE from /v1/chat/completions with stream: true),
// inline images from `images`, an "Include image" toggle (modalities), and stored chats to resume.
// A reply drawn in thinking mode streams its image plan (`reasoning_content`, docs/serving.md 4)
// into a collapsed "Reasoning" section above the reply text.
import { apiFetch, apiJson, authImage, errorMessage, type CharacterDetail, type ChatSummary, type StoredMessage } from '../api.js';
import { clear, h, notice } from '../dom.js';
import { sseData } from '../sse.js';

type Turn = { role: 'system' | 'user' | 'assistant'; content: string };

interface Chunk {
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null; images?: { image_url?: { url?: string } }[] }; finish_reason?: string | null }[] | null;
  error?: { message?: string };
}

const SETTINGS = 'unichar.chatSettings';
interface Settings {
  maxTokens: number;
  temperature: number;
  includeImage: boolean;
}
function loadSettings(): Settings {
  const d: Settings = { maxTokens: 256, temperature: 0.8, includeImage: false };
  try {
    return { ...d, ...(JSON.parse(localStorage.getItem(SETTINGS) ?? '{}') as Partial<Settings>) };
  } catch {
    return d;
  }
}

/** A reply's text without this server's markdown image links (`serve --image-links`, for clients
 * that read only content; docs/serving.md 4): this page shows the same images from `images`. */
const IMAGE_LINK = /\n*!\[[^\]\n]*\]\([^)\s]*\/v1\/images\/[0-9a-f]{64}(?:\?[^)\s]*)?\)/g;
export const withoutImageLinks = (text: string): string => text.replace(IMAGE_LINK, '');

/** The page's controls, built once per page. */
interface ChatView {
  character: CharacterDetail;
  log: HTMLOListElement;
  textarea: HTMLTextAreaElement;
  includeImage: HTMLInputElement;
  maxTokens: HTMLInputElement;
  temperature: HTMLInputElement;
  send: HTMLButtonElement;
  stop: HTMLButtonElement;
  chatsSelect: HTMLSelectElement;
  form: HTMLFormElement;
}

/** What changes while the page is open: the turns sent as context, the stored chat, the request in flight. */
interface ChatState {
  history: Turn[];
  currentChat: string | undefined;
  inFlight: AbortController | null;
}

type Bubble = { li: HTMLLIElement; body: HTMLDivElement; imgs: HTMLDivElement; reasoning?: HTMLDivElement };

/** The bubble's reasoning text, made on first use: a collapsed section above the reply text. */
function reasoningText(out: Bubble): HTMLDivElement {
  if (!out.reasoning) {
    out.reasoning = h('div', { class: 'reasoning-text' });
    out.body.before(h('details', { class: 'reasoning' }, h('summary', {}, 'Reasoning (the plan of the image)'), out.reasoning));
  }
  return out.reasoning;
}

export async function chatPage(main: HTMLElement, signal: AbortSignal, characterId: string, chatId: string | undefined): Promise<void> {
  clear(main);
  let character: CharacterDetail;
  try {
    character = await apiJson<CharacterDetail>(`/v1/characters/${encodeURIComponent(characterId)}`);
  } catch (e) {
    main.append(h('h1', {}, 'Chat'), notice(`Could not load the character: ${(e as Error).message}`, 'error'), h('p', {}, h('a', { href: '#/' }, 'Back to the characters')));
    return;
  }
  if (signal.aborted) return;
  const view = chatView(character, loadSettings());
  mountChatView(main, view);
  const state: ChatState = { history: [], currentChat: chatId, inFlight: null };
  for (const el of [view.includeImage, view.maxTokens, view.temperature]) el.addEventListener('change', () => saveSettings(view));
  await showConversation(view, state);
  listStoredChats(view, state);
  wireComposer(view, state, signal);
  view.textarea.focus();
}

function chatView(character: CharacterDetail, settings: Settings): ChatView {
  const log = h('ol', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite', 'aria-label': `Conversation with ${character.name}` });
  const textarea = h('textarea', { id: 'message', name: 'message', rows: 2, placeholder: `Message ${character.name}…`, autocomplete: 'off', required: true });
  const includeImage = h('input', { type: 'checkbox', id: 'include-image', name: 'include-image', checked: settings.includeImage });
  const maxTokens = h('input', { type: 'number', id: 'max-tokens', name: 'max-tokens', min: 1, max: 4096, value: settings.maxTokens, inputmode: 'numeric' });
  const temperature = h('input', { type: 'number', id: 'temperature', name: 'temperature', min: 0, max: 2, step: 0.1, value: settings.temperature, inputmode: 'decimal' });
  const send = h('button', { type: 'submit', id: 'send' }, 'Send');
  const stop = h('button', { type: 'button', id: 'stop', hidden: true }, 'Stop');
  const chatsSelect = h('select', { id: 'chat-select', name: 'chat' }, h('option', { value: '' }, 'New chat'));
  const form = h(
    'form',
    { class: 'composer', id: 'composer' },
    h('label', { for: 'message', class: 'visually-hidden' }, 'Message'),
    textarea,
    h(
      'div',
      { class: 'composer-controls' },
      h('label', { class: 'toggle', for: 'include-image' }, includeImage, ' Include image'),
      h(
        'details',
        { class: 'settings' },
        h('summary', {}, 'Settings'),
        h('label', { for: 'max-tokens' }, 'Max tokens'),
        maxTokens,
        h('label', { for: 'temperature' }, 'Temperature'),
        temperature,
      ),
      h('span', { class: 'spacer' }),
      stop,
      send,
    ),
    h('p', { class: 'hint' }, 'Enter sends; Shift+Enter starts a new line.'),
  );
  return { character, log, textarea, includeImage, maxTokens, temperature, send, stop, chatsSelect, form };
}

function mountChatView(main: HTMLElement, { character, chatsSelect, log, form }: ChatView): void {
  const avatar = character.avatar_url ? authImage(character.avatar_url, '', 'avatar small') : h('span', { class: 'avatar small placeholder', 'aria-hidden': 'true' }, character.name.slice(0, 1).toUpperCase());
  main.append(
    h(
      'div',
      { class: 'chat-header' },
      avatar,
      h('div', { class: 'who' }, h('h1', {}, character.name), character.description ? h('p', { class: 'description' }, character.description) : null),
      h('label', { for: 'chat-select', class: 'visually-hidden' }, 'Conversation'),
      chatsSelect,
    ),
    log,
    form,
  );
}

function saveSettings({ maxTokens, temperature, includeImage }: ChatView): Settings {
  const s: Settings = { maxTokens: Math.max(1, Number(maxTokens.value) || 256), temperature: Number(temperature.value) || 0, includeImage: includeImage.checked };
  localStorage.setItem(SETTINGS, JSON.stringify(s));
  return s;
}

function bubble({ character, log }: ChatView, role: Turn['role'], text: string, images: string[] = []): Bubble {
  const body = h('div', { class: 'text' }, text);
  const imgs = h('div', { class: 'images' });
  for (const url of images) imgs.append(authImage(url, `Image from ${role === 'assistant' ? character.name : 'you'}`, 'chat-image'));
  const li = h('li', { class: `message ${role}` }, h('span', { class: 'visually-hidden' }, role === 'user' ? 'You: ' : `${character.name}: `), body, imgs);
  log.append(li);
  li.scrollIntoView({ block: 'end' });
  return { li, body, imgs };
}

/** A stored chat: its messages; a new one: the character's opening line. */
async function showConversation(view: ChatView, state: ChatState): Promise<void> {
  if (state.currentChat) {
    try {
      const stored = await apiJson<{ messages: StoredMessage[] }>(`/v1/chats/${encodeURIComponent(state.currentChat)}`);
      for (const m of stored.messages) {
        state.history.push({ role: m.role, content: m.content });
        if (m.role !== 'system') bubble(view, m.role, m.content, m.images.map((i) => i.url));
      }
    } catch (e) {
      view.log.append(h('li', {}, notice(`Could not load that chat: ${(e as Error).message}`, 'error')));
      state.currentChat = undefined;
    }
  } else if (view.character.opening) {
    state.history.push({ role: 'assistant', content: view.character.opening });
    bubble(view, 'assistant', view.character.opening);
  }
}

/** Stored chats of this character, to resume. */
function listStoredChats({ character, chatsSelect }: ChatView, state: ChatState): void {
  void apiJson<{ data: ChatSummary[] }>(`/v1/chats?character_id=${encodeURIComponent(character.id)}`).then(
    ({ data }) => {
      for (const c of data) {
        const when = new Date(c.updated_at * 1000).toLocaleString();
        chatsSelect.append(h('option', { value: c.id, selected: c.id === state.currentChat }, c.title || `Chat of ${when}`));
      }
    },
    () => {},
  );
  chatsSelect.addEventListener('change', () => {
    location.hash = `#/chat/${encodeURIComponent(character.id)}${chatsSelect.value ? `/${encodeURIComponent(chatsSelect.value)}` : ''}`;
  });
}

/** Enter sends, Shift+Enter is a new line; Stop and leaving the page abort the reply in flight. */
function wireComposer(view: ChatView, state: ChatState, signal: AbortSignal): void {
  signal.addEventListener('abort', () => state.inFlight?.abort(), { once: true });
  view.stop.addEventListener('click', () => state.inFlight?.abort());
  view.textarea.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      view.form.requestSubmit();
    }
  });
  view.form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = view.textarea.value.trim();
    if (!text || state.inFlight) return;
    void turn(view, state, text, signal);
  });
}

/** One exchange: the user's message, then the reply streamed into its bubble. */
async function turn(view: ChatView, state: ChatState, text: string, signal: AbortSignal): Promise<void> {
  const s = saveSettings(view);
  view.textarea.value = '';
  bubble(view, 'user', text);
  state.history.push({ role: 'user', content: text });
  const out = bubble(view, 'assistant', '');
  out.li.classList.add('streaming');
  out.li.setAttribute('aria-busy', 'true');
  const ctl = new AbortController();
  state.inFlight = ctl;
  view.send.disabled = true;
  view.stop.hidden = false;
  const reply = { text: '' };
  try {
    const res = await apiFetch('/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      signal: ctl.signal,
      body: JSON.stringify({
        model: view.character.id,
        messages: state.history,
        stream: true,
        stream_options: { include_usage: true },
        modalities: s.includeImage ? ['text', 'image'] : ['text'],
        max_tokens: s.maxTokens,
        temperature: s.temperature,
        // The UI's conversations are chats: keep the first turn as one (docs/serving.md 5).
        ...(state.currentChat ? { chat_id: state.currentChat } : { store: true }),
      }),
    });
    if (!res.ok || !res.body) {
      out.li.append(notice(await errorMessage(res), 'error'));
      state.history.pop();
      return;
    }
    adoptChatId(view, state, res.headers.get('x-chat-id'));
    await streamReply(view, res.body, ctl.signal, out, reply);
    if (ctl.signal.aborted) out.li.append(notice('Stopped.'));
    state.history.push({ role: 'assistant', content: reply.text });
  } catch (err) {
    if (ctl.signal.aborted) {
      out.li.append(notice('Stopped.'));
      if (reply.text) state.history.push({ role: 'assistant', content: reply.text });
    } else {
      out.li.append(notice(`Connection failed: ${(err as Error).message}`, 'error'));
    }
  } finally {
    out.li.classList.remove('streaming');
    out.li.removeAttribute('aria-busy');
    state.inFlight = null;
    view.send.disabled = false;
    view.stop.hidden = true;
    if (!signal.aborted) view.textarea.focus();
  }
}

/** The chat the server stored the first turn in: kept, the URL made resumable without re-rendering the page. */
function adoptChatId({ character, chatsSelect }: ChatView, state: ChatState, newChat: string | null): void {
  if (!newChat || newChat === state.currentChat) return;
  state.currentChat = newChat;
  window.history.replaceState(null, '', `#/chat/${encodeURIComponent(character.id)}/${encodeURIComponent(newChat)}`);
  if (![...chatsSelect.options].some((o) => o.value === newChat)) chatsSelect.append(h('option', { value: newChat }, `Chat of ${new Date().toLocaleString()}`));
  chatsSelect.value = newChat;
}

/** The SSE chunks of a reply into its bubble: text deltas (without image links), reasoning deltas and images. */
async function streamReply({ character }: ChatView, body: ReadableStream<Uint8Array>, signal: AbortSignal, out: Bubble, reply: { text: string }): Promise<void> {
  for await (const data of sseData(body, signal)) {
    if (data === '[DONE]') break;
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch {
      continue;
    }
    if (chunk.error) {
      out.li.append(notice(chunk.error.message ?? 'the server reported an error', 'error'));
      break;
    }
    // Usage chunks carry `choices: []` (or null on some servers).
    for (const c of chunk.choices ?? []) {
      if (c.delta?.content) {
        reply.text += c.delta.content;
        out.body.textContent = withoutImageLinks(reply.text);
      }
      if (c.delta?.reasoning_content) reasoningText(out).append(c.delta.reasoning_content);
      for (const img of c.delta?.images ?? []) {
        const url = img.image_url?.url;
        if (url) out.imgs.append(authImage(url, `Image from ${character.name}`, 'chat-image'));
      }
    }
    out.li.scrollIntoView({ block: 'end' });
  }
}
