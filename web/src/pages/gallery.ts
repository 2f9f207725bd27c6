// The character gallery: a card per character (avatar, name) linking to its chat, and card import
// by drag and drop anywhere on the page or through the file input.
import { apiFetch, apiJson, authImage, errorMessage, type CharacterSummary } from '../api.js';
import { clear, h, notice } from '../dom.js';

export async function galleryPage(main: HTMLElement, signal: AbortSignal): Promise<void> {
  const list = h('ul', { class: 'gallery', id: 'character-list', 'aria-label': 'Characters' });
  const status = h('div', { class: 'import-status', 'aria-live': 'polite' });
  const input = h('input', { type: 'file', id: 'card-file', accept: '.png,.json,.charx,image/png,application/json,application/zip', multiple: true, class: 'visually-hidden' });
  const drop = h(
    'section',
    { class: 'dropzone', 'aria-labelledby': 'import-title' },
    h('h2', { id: 'import-title' }, 'Import a character card'),
    h('p', {}, 'Drop a PNG, JSON or CHARX card here, or '),
    h('label', { for: 'card-file', class: 'button' }, 'choose a file…'),
    input,
    status,
  );

  clear(main);
  main.append(h('h1', {}, 'Characters'), list, drop);

  const render = async () => {
    let chars: CharacterSummary[];
    try {
      chars = (await apiJson<{ data: CharacterSummary[] }>('/v1/characters')).data;
    } catch (e) {
      clear(list);
      list.append(h('li', { class: 'empty' }, notice(`Could not load characters: ${(e as Error).message}`, 'error')));
      return;
    }
    if (signal.aborted) return;
    clear(list);
    if (chars.length === 0) list.append(h('li', { class: 'empty' }, notice('No characters yet: import a card below.')));
    for (const c of chars) {
      const avatar = c.avatar_url ? authImage(c.avatar_url, '', 'avatar') : h('span', { class: 'avatar placeholder', 'aria-hidden': 'true' }, c.name.slice(0, 1).toUpperCase());
      list.append(h('li', {}, h('a', { class: 'character-card', href: `#/chat/${encodeURIComponent(c.id)}`, 'data-id': c.id }, avatar, h('span', { class: 'name' }, c.name))));
    }
  };

  const upload = async (files: Iterable<File>) => {
    for (const file of files) {
      status.textContent = `Importing ${file.name}…`;
      const form = new FormData();
      form.append('file', file, file.name);
      const res = await apiFetch('/v1/characters/import', { method: 'POST', body: form });
      if (!res.ok) {
        clear(status);
        status.append(notice(`${file.name}: ${await errorMessage(res)}`, 'error'));
        continue;
      }
      const c = (await res.json()) as CharacterSummary & { warnings?: string[] };
      clear(status);
      status.append(notice(`Imported ${c.name}.`));
      // What the method still lacks (docs/ecosystem.md 1.2), e.g. a card with only its avatar.
      for (const w of c.warnings ?? []) status.append(notice(w, 'warning'));
    }
    await render();
  };

  input.addEventListener('change', () => {
    if (input.files?.length) void upload([...input.files]).finally(() => (input.value = ''));
  });
  // Drag and drop: the whole page accepts a card while the gallery is shown.
  const over = (e: DragEvent) => {
    if (!e.dataTransfer?.types.includes('Files')) return;
    e.preventDefault();
    drop.classList.add('dragging');
  };
  const leave = () => drop.classList.remove('dragging');
  const dropped = (e: DragEvent) => {
    if (!e.dataTransfer?.files.length) return;
    e.preventDefault();
    leave();
    void upload([...e.dataTransfer.files]);
  };
  document.addEventListener('dragover', over, { signal });
  document.addEventListener('dragleave', leave, { signal });
  document.addEventListener('drop', dropped, { signal });

  await render();
}
