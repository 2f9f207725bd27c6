// The UniCharacter web UI: hash routes (so the server needs no fallback routes), one page at a
// time; leaving a page aborts its requests and timers.
import './style.css';
import { askForKey, hasKey, onKeyChange, setKey } from './api.js';
import { chatPage } from './pages/chat.js';
import { galleryPage } from './pages/gallery.js';
import { jobsPage } from './pages/jobs.js';
import { reportPage } from './pages/report.js';
import { statusPage } from './pages/status.js';
import { notice } from './dom.js';

const main = document.getElementById('main')!;
const keyButton = document.getElementById('key-button') as HTMLButtonElement;
let current: AbortController | null = null;

async function route(): Promise<void> {
  current?.abort();
  const ctl = new AbortController();
  current = ctl;
  const raw = location.hash.replace(/^#\/?/, '');
  const [path = '', qs = ''] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const page = parts[0] ?? '';
  for (const a of document.querySelectorAll<HTMLAnchorElement>('[data-nav]')) {
    const active = a.dataset.nav === (page === '' || page === 'chat' ? 'gallery' : page);
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    if (page === '') await galleryPage(main, ctl.signal);
    else if (page === 'chat' && parts[1]) await chatPage(main, ctl.signal, parts[1], parts[2]);
    else if (page === 'jobs') await jobsPage(main, ctl.signal);
    else if (page === 'report') await reportPage(main, ctl.signal, new URLSearchParams(qs));
    else if (page === 'status') await statusPage(main, ctl.signal);
    else {
      main.replaceChildren(notice(`No page here: #/${path}`, 'error'));
    }
  } catch (e) {
    if (!ctl.signal.aborted) main.replaceChildren(notice(`Something went wrong: ${(e as Error).message}`, 'error'));
  }
}

function syncKeyButton(): void {
  keyButton.hidden = !hasKey();
  keyButton.textContent = 'Change API key';
}
keyButton.addEventListener('click', () => {
  setKey(null);
  void askForKey('Enter the API key for this server.').then(route);
});
onKeyChange(syncKeyButton);
syncKeyButton();

window.addEventListener('hashchange', () => {
  void route();
  // Move focus to the new page for keyboard and screen-reader users.
  main.focus({ preventScroll: true });
});
void route();
