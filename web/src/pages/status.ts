// Server status from GET /health: up or not, the request queue, the character models the engine
// has loaded, and what they hold in memory (engine.memory, docs/serving.md 10): each character's
// own bytes (its whole model, or its LoRA adapters over a shared base) and each shared base once.
// A server with an API key shows a caller without it only that it is up.
import { apiJson } from '../api.js';
import { append, clear, h, notice } from '../dom.js';

interface MemoryJson {
  characters: { id: string; own_bytes: number; base: string | null }[];
  bases: { key: string; model: string; bytes: number; characters: string[] }[];
  total_bytes: number;
}
export interface Health {
  status: string;
  schema_version?: number;
  engine?: { models: { id: string; ready: boolean }[]; memory?: MemoryJson };
  queue?: { running: number; waiting: number; capacity: number; concurrency: number };
}

/** Bytes as MiB with the exact count kept in data-bytes (for tools and tests). */
function bytesCell(n: number): HTMLTableCellElement {
  return h('td', { class: 'num', 'data-bytes': n, title: `${n.toLocaleString()} bytes` }, `${(n / 2 ** 20).toFixed(1)} MiB`);
}

function table(caption: string, head: string[], rows: HTMLTableRowElement[], id: string): HTMLElement {
  return h(
    'div',
    { class: 'table-scroll' },
    h('table', { class: 'report-table', id }, h('caption', {}, caption), h('thead', {}, h('tr', {}, head.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, rows)),
  );
}

/** The memory tables: characters, then shared bases, then the total. */
export function memoryView(m: MemoryJson): HTMLElement {
  const characters = m.characters.map((c) => h('tr', { 'data-character': c.id }, h('th', { scope: 'row' }, c.id), bytesCell(c.own_bytes), h('td', {}, c.base ?? 'none (a whole model)')));
  const bases = m.bases.map((b) => h('tr', { 'data-base': b.key }, h('th', { scope: 'row' }, b.model), bytesCell(b.bytes), h('td', {}, b.characters.join(', '))));
  return h(
    'section',
    { id: 'memory', 'aria-labelledby': 'memory-title' },
    h('h2', { id: 'memory-title' }, 'Memory'),
    m.characters.length === 0 ? notice('No character model is loaded yet: one loads with its first chat.') : null,
    m.characters.length ? table('Per character: its own weights', ['Character', 'Own memory', 'Shared base'], characters, 'memory-characters') : null,
    m.bases.length ? table('Shared bases, held once', ['Base', 'Memory', 'Used by'], bases, 'memory-bases') : null,
    h('p', { id: 'memory-total' }, 'Total: ', h('span', { 'data-bytes': m.total_bytes }, `${(m.total_bytes / 2 ** 20).toFixed(1)} MiB`)),
  );
}

export async function statusPage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  clear(main);
  main.append(h('h1', {}, 'Server status'));
  let health: Health;
  try {
    health = await apiJson<Health>('/health', { signal });
  } catch (e) {
    if (!signal.aborted) main.append(notice(`The server did not answer /health: ${(e as Error).message}`, 'error'));
    return;
  }
  main.append(h('p', { id: 'health-status' }, `Status: ${health.status}`));
  if (!health.engine) {
    main.append(notice('This server has an API key: enter it (Change API key) to see what the engine holds.'));
    return;
  }
  const models = health.engine.models.map((m) => h('li', {}, `${m.id}${m.ready ? '' : ' (not ready)'}`));
  const q = health.queue;
  append(
    main,
    h('h2', {}, 'Models'),
    models.length ? h('ul', { id: 'engine-models' }, models) : notice('No character models are installed.'),
    q ? h('p', { id: 'queue' }, `Requests: ${q.running} running, ${q.waiting} waiting (room for ${q.capacity}; ${q.concurrency} at a time)`) : null,
    health.engine.memory ? memoryView(health.engine.memory) : notice('This engine does not report its memory.'),
  );
}
