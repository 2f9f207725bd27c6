// Writes an evaluation report three ways: report.json (everything, the source of truth),
// report.md (tables for a README or an issue) and report.html (one self-contained page: tables,
// per-task image grids with the images inlined, and a bar per cell). Every cell shows its
// evaluator id; "not measured" cells carry their reason; "—" marks a column a metric does not apply to.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toDataUri } from '../data/index.js';
import type { EvalReport, MetricCell, MetricRow, TaskReport } from './report-types.js';

export const REPORT_FILES = { json: 'report.json', markdown: 'report.md', html: 'report.html' } as const;

export function formatValue(v: number, unit: MetricRow['unit']): string {
  if (unit === '%') return `${v.toFixed(1)}%`;
  if (unit === 'score 1-10') return v.toFixed(2);
  return v.toFixed(3);
}

const mdEscape = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function columnsOf(r: EvalReport): string[] {
  return r.columns.map((c) => c.label);
}

export function reportMarkdown(r: EvalReport): string {
  const cols = columnsOf(r);
  const out: string[] = [];
  out.push(`# Evaluation: ${r.character.display}`, '');
  out.push(`Character \`${r.character.id}\` (${r.character.category}); split: ${r.split.dir ?? '(the character\'s own held-out items)'} — ${r.split.heldOutImages} held-out images, ${r.split.heldOutScenes} held-out scenes. Created ${r.createdAt}.`, '');
  out.push('## Columns', '');
  for (const c of r.columns) out.push(`- **${c.label}** (${c.kind}): ${c.description}${c.provenance ? ` — provenance ${JSON.stringify(c.provenance)}` : ''}`);
  out.push('- **paper**: the paper\'s number where one exists, as reported by secondary sources; context only, protocols differ.', '');
  out.push('## Evaluators', '');
  for (const e of r.evaluators) out.push(`- \`${e.id}\`: ${e.description}${e.unavailable ? ` — **unavailable**: ${e.unavailable}` : ''}`);
  out.push('', `Settings: ${Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(', ')}`, '');
  for (const t of r.tasks) {
    out.push(`## ${t.title}`, '');
    for (const n of t.notes) out.push(`> ${n}`);
    out.push('');
    out.push(`| metric | unit | ${cols.map(mdEscape).join(' | ')} | paper |`);
    out.push(`|---|---|${cols.map(() => '---|').join('')}---|`);
    const reasons: string[] = [];
    for (const m of t.metrics) {
      const cells = cols.map((c) => {
        const cell = m.cells[c];
        if (!cell) return '—';
        if (cell.value === null) {
          let i = reasons.indexOf(cell.notMeasured ?? '');
          if (i < 0) { reasons.push(cell.notMeasured ?? 'unknown'); i = reasons.length - 1; }
          return `not measured [${i + 1}]`;
        }
        return `${formatValue(cell.value, m.unit)} \`${cell.evaluator}\` (n=${cell.n})`;
      });
      out.push(`| ${mdEscape(m.title)} | ${m.unit} | ${cells.map(mdEscape).join(' | ')} | ${m.paper ? m.paper.value : '—'} |`);
    }
    out.push('');
    reasons.forEach((x, i) => out.push(`[${i + 1}] ${x}  `));
    if (reasons.length) out.push('');
    for (const m of t.metrics) out.push(`- *${m.title}*: ${m.description}`);
    out.push('');
  }
  if (r.warnings.length) {
    out.push('## Warnings', '');
    for (const w of r.warnings) out.push(`- ${w}`);
    out.push('');
  }
  return out.join('\n');
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function dataUri(dir: string, rel: string): string | null {
  const p = join(dir, rel);
  if (!existsSync(p)) return null;
  return toDataUri(readFileSync(p), 'image/png');
}

function cellHtml(m: MetricRow, cell: MetricCell | undefined, rowMax: number): string {
  if (!cell) return '<td class="na">—</td>';
  if (cell.value === null) return `<td class="nm"><span class="nm-label">not measured</span><div class="why">${esc(cell.notMeasured ?? '')}</div><div class="ev">${esc(cell.evaluator)}</div></td>`;
  const w = rowMax > 0 ? Math.max(0, Math.min(100, (100 * Math.abs(cell.value)) / rowMax)) : 0;
  const detail = cell.detail ? `<div class="detail">${esc(Object.entries(cell.detail).map(([k, v]) => `${k}: ${typeof v === 'number' ? v.toFixed(3) : v}`).join('; '))}</div>` : '';
  return `<td><div class="val">${esc(formatValue(cell.value, m.unit))}</div><div class="bar"><span style="width:${w.toFixed(1)}%"></span></div><div class="ev">${esc(cell.evaluator)} · n=${cell.n}</div>${detail}</td>`;
}

function taskHtml(r: EvalReport, t: TaskReport, dir: string): string {
  const cols = columnsOf(r);
  const rows = t.metrics.map((m) => {
    const vals = Object.values(m.cells).map((c) => (c.value === null ? 0 : Math.abs(c.value)));
    const rowMax = Math.max(0, ...vals, m.paper ? Math.abs(m.paper.value) : 0);
    return `<tr><th title="${esc(m.description)}">${esc(m.title)}<div class="unit">${esc(m.unit)}${m.higherIsBetter ? ' ↑' : ' ↓'}</div></th>${cols.map((c) => cellHtml(m, m.cells[c], rowMax)).join('')}<td class="paper">${m.paper ? esc(String(m.paper.value)) : '—'}</td></tr>`;
  }).join('\n');
  const imgs = t.samples.filter((s) => s.image);
  let grid = '';
  if (imgs.length) {
    const byCol = new Map<string, typeof imgs>();
    for (const s of imgs) byCol.set(s.column, [...(byCol.get(s.column) ?? []), s]);
    grid = [...byCol.entries()].map(([col, ss]) => `<h4>${esc(col)}</h4><div class="grid">${ss.map((s) => {
      const uri = dataUri(dir, s.image!);
      return `<figure>${uri ? `<img src="${uri}" alt="${esc(s.input.slice(0, 80))}">` : '<div class="missing">image missing</div>'}<figcaption>${esc(s.input.slice(0, 140))}${s.output ? `<br><i>${esc(s.output.slice(0, 140))}</i>` : ''}</figcaption></figure>`;
    }).join('')}</div>`).join('\n');
  }
  return `<section id="task-${t.name}"><h2>${esc(t.title)}</h2>${t.notes.map((n) => `<p class="note">${esc(n)}</p>`).join('')}
<table class="metrics"><thead><tr><th>metric</th>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}<th>paper</th></tr></thead><tbody>
${rows}
</tbody></table>
<ul class="desc">${t.metrics.map((m) => `<li><b>${esc(m.title)}</b>: ${esc(m.description)}</li>`).join('')}</ul>
${grid}</section>`;
}

export function reportHtml(r: EvalReport, dir: string): string {
  const css = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
thead th{background:#f0f0f0}.val{font-weight:600}.ev,.unit,.detail,.why{font-size:11px;color:#666}.nm{background:#fff6e6}.nm-label{color:#a60;font-weight:600}
.na{color:#aaa;text-align:center}.bar{height:6px;background:#eee;width:120px}.bar span{display:block;height:6px;background:#4a7bd0}
.grid{display:flex;flex-wrap:wrap;gap:8px}figure{margin:0;width:140px}figure img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
figcaption{font-size:11px}.note{color:#444;font-style:italic}.paper{color:#666}`;
  const cols = r.columns.map((c) => `<li><b>${esc(c.label)}</b> (${c.kind}): ${esc(c.description)}</li>`).join('');
  const evs = r.evaluators.map((e) => `<li><code>${esc(e.id)}</code>: ${esc(e.description)}${e.unavailable ? ` — <b>unavailable</b>: ${esc(e.unavailable)}` : ''}</li>`).join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Evaluation: ${esc(r.character.display)}</title><style>${css}</style></head><body>
<h1>Evaluation: ${esc(r.character.display)}</h1>
<p>Character <code>${esc(r.character.id)}</code> (${esc(r.character.category)}); split ${esc(r.split.dir ?? '(own held-out items)')}: ${r.split.heldOutImages} held-out images, ${r.split.heldOutScenes} held-out scenes. Created ${esc(r.createdAt)}.</p>
<h3>Columns</h3><ul>${cols}<li><b>paper</b>: the paper's number as reported by secondary sources (context only).</li></ul>
<h3>Evaluators</h3><ul>${evs}</ul>
<p class="note">Settings: ${esc(Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(', '))}</p>
${r.tasks.map((t) => taskHtml(r, t, dir)).join('\n')}
${r.warnings.length ? `<h2>Warnings</h2><ul>${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
</body></html>
`;
}

export function writeReportFiles(r: EvalReport, dir: string): void {
  writeFileSync(join(dir, REPORT_FILES.json), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(dir, REPORT_FILES.markdown), reportMarkdown(r));
  writeFileSync(join(dir, REPORT_FILES.html), reportHtml(r, dir));
}
