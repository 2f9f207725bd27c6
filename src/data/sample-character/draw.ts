// Tessel, drawn by code: SVG rendered by sharp (docs/architecture.md "The sample character"). Every image is a pure function
// of its ImageSpec, so the PNGs regenerate byte-identically. No text elements: font rendering
// differs between machines.
import sharp from 'sharp';
import { Rng } from '../rng.js';

export type Pose = 'sit' | 'stand' | 'wave' | 'jump' | 'run' | 'sleep';
export type Expression = 'happy' | 'surprised' | 'asleep' | 'determined' | 'laughing' | 'pouting';
export type Place = 'meadow' | 'beach' | 'forest' | 'night' | 'snow' | 'rain' | 'library' | 'sunset' | 'mountain' | 'none';
export type Prop = 'map' | 'umbrella' | 'lantern' | 'book' | 'none';

export interface ImageSpec {
  pose: Pose;
  expression: Expression;
  place: Place;
  prop: Prop;
}

export const SIZE = 256;

// Identity: teal fur, cream muzzle and belly, orange four-pointed star on the forehead, amber eyes,
// a bushy tail with three orange rings and a cream tip, a yellow scarf with a brass compass.
export const PALETTE = {
  fur: '#2aa7a1',
  furDark: '#17605c',
  cream: '#f4ead2',
  star: '#ff8a1f',
  eye: '#e0a526',
  scarf: '#ffd23f',
  scarfShade: '#e0b020',
  brass: '#c8962e',
  ink: '#1d2426',
};

function background(place: Place, rng: Rng): string {
  const r = (x: number, y: number, w: number, h: number, fill: string) => `<rect x="${x}" y="${y}" width="${w}" height="${h}" fill="${fill}"/>`;
  switch (place) {
    case 'none':
      return '';
    case 'meadow': {
      let s = r(0, 0, 256, 256, '#9fd8ff') + '<circle cx="36" cy="36" r="20" fill="#ffe066"/>' + r(0, 190, 256, 66, '#7cc96b');
      for (let i = 0; i < 9; i++) s += `<circle cx="${10 + rng.int(236)}" cy="${200 + rng.int(50)}" r="3" fill="${i % 2 ? '#ff7eb6' : '#ffffff'}"/>`;
      return s;
    }
    case 'beach':
      return r(0, 0, 256, 256, '#a8e0ff') + r(0, 150, 256, 40, '#3b8fd9') + r(0, 185, 256, 71, '#f2d59b') + '<path d="M214 226 q10 -14 20 0 z" fill="#f7a9a8"/>';
    case 'forest': {
      let s = r(0, 0, 256, 256, '#cfe9d4') + r(0, 195, 256, 61, '#5a9a4a');
      for (const x of [20, 60, 200, 240]) s += r(x - 5, 120, 10, 80, '#7a5232') + `<circle cx="${x}" cy="110" r="28" fill="#2f7d3b"/>`;
      return s;
    }
    case 'night': {
      let s = r(0, 0, 256, 256, '#152042') + '<circle cx="206" cy="44" r="20" fill="#fff3c4"/><circle cx="214" cy="38" r="18" fill="#152042"/>' + r(0, 200, 256, 56, '#2b3b2e');
      for (let i = 0; i < 14; i++) s += `<circle cx="${rng.int(256)}" cy="${rng.int(120)}" r="${1 + rng.int(2)}" fill="#ffffff"/>`;
      return s;
    }
    case 'snow': {
      let s = r(0, 0, 256, 256, '#dbe7f3') + r(0, 195, 256, 61, '#f8fbff') + '<path d="M30 195 l22 -60 l22 60 z" fill="#3f7d5a"/>';
      for (let i = 0; i < 22; i++) s += `<circle cx="${rng.int(256)}" cy="${rng.int(190)}" r="2.5" fill="#ffffff" stroke="#b8c7d6" stroke-width="0.8"/>`;
      return s;
    }
    case 'rain': {
      let s = r(0, 0, 256, 256, '#8b97a6') + r(0, 198, 256, 58, '#5d6b5f') + '<ellipse cx="70" cy="228" rx="40" ry="8" fill="#7f9bb5"/>';
      for (let i = 0; i < 26; i++) {
        const x = rng.int(256), y = rng.int(190);
        s += `<line x1="${x}" y1="${y}" x2="${x - 4}" y2="${y + 12}" stroke="#cfe3f5" stroke-width="1.5"/>`;
      }
      return s;
    }
    case 'library': {
      let s = r(0, 0, 256, 256, '#8a5a3b') + r(0, 205, 256, 51, '#5e3b26');
      const colours = ['#c0392b', '#2e86c1', '#27ae60', '#f1c40f', '#8e44ad'];
      for (const shelfY of [40, 100, 160]) {
        s += r(0, shelfY + 38, 256, 6, '#4a2c1a');
        for (let x = 4; x < 252; x += 12) s += r(x, shelfY + 8 + rng.int(8), 9, 30, colours[rng.int(colours.length)]!);
      }
      return s;
    }
    case 'sunset':
      return (
        '<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#ff9a5a"/><stop offset="1" stop-color="#ff5e8a"/></linearGradient></defs>' +
        r(0, 0, 256, 256, 'url(#sky)') + '<circle cx="128" cy="196" r="40" fill="#ffd56b"/>' + '<path d="M0 196 q64 -30 128 0 t128 0 v60 h-256 z" fill="#5b2a5e"/>'
      );
    case 'mountain':
      return (
        r(0, 0, 256, 256, '#b6dcf2') +
        '<path d="M-10 190 l70 -120 l70 120 z" fill="#6d7f99"/><path d="M45 96 l15 -26 l15 26 z" fill="#ffffff"/>' +
        '<path d="M120 190 l70 -100 l80 100 z" fill="#7f8fa6"/><path d="M176 110 l14 -20 l14 20 z" fill="#ffffff"/>' +
        r(0, 190, 256, 66, '#c9b48a')
      );
  }
}

function eyes(e: Expression): string {
  const P = PALETTE;
  const open = (rx: number) =>
    [-15, 15].map((x) => `<ellipse cx="${x}" cy="-4" rx="${rx}" ry="${rx + 1}" fill="${P.eye}"/><circle cx="${x}" cy="-3" r="${rx * 0.55}" fill="${P.ink}"/><circle cx="${x + 2}" cy="-6" r="1.6" fill="#ffffff"/>`).join('');
  const arc = (d: string) => [-15, 15].map((x) => `<path d="M${x - 7} -4 ${d.replace('X', String(x))}" stroke="${P.ink}" stroke-width="2.5" fill="none" stroke-linecap="round"/>`).join('');
  switch (e) {
    case 'happy':
      return open(6);
    case 'surprised':
      return open(8) + `<path d="M-22 -19 q7 -5 14 0 M8 -19 q7 -5 14 0" stroke="${P.furDark}" stroke-width="2.5" fill="none"/>`;
    case 'asleep':
      return arc('q7 5 14 0');
    case 'laughing':
      return arc('q7 -8 14 0');
    case 'determined':
      return open(6) + `<path d="M-23 -15 l15 5 M23 -15 l-15 5" stroke="${P.furDark}" stroke-width="3" stroke-linecap="round"/>`;
    case 'pouting':
      return open(6) + `<path d="M-23 -11 l15 -5 M23 -11 l-15 -5" stroke="${P.furDark}" stroke-width="3" stroke-linecap="round"/>`;
  }
}

function mouth(e: Expression): string {
  const s = `stroke="${PALETTE.ink}" stroke-width="2.2" fill="none" stroke-linecap="round"`;
  switch (e) {
    case 'happy':
      return `<path d="M-7 14 q3.5 4 7 0 q3.5 4 7 0" ${s}/>`;
    case 'surprised':
      return `<ellipse cx="0" cy="17" rx="4" ry="5" fill="${PALETTE.ink}"/>`;
    case 'asleep':
      return `<path d="M-4 15 h8" ${s}/>`;
    case 'laughing':
      return `<path d="M-9 12 q9 14 18 0 z" fill="${PALETTE.ink}"/><path d="M-4 18 q4 4 8 0 z" fill="#ff7a8a"/>`;
    case 'determined':
      return `<path d="M-6 15 h12" ${s}/>`;
    case 'pouting':
      return `<path d="M-7 18 q7 -6 14 0" ${s}/>`;
  }
}

/** The head, centred on (0, 0): ears, face, star marking, eyes, muzzle, mouth. */
function head(e: Expression): string {
  const P = PALETTE;
  const ear = (sx: number) =>
    `<g transform="scale(${sx},1)"><path d="M14 -26 L34 -62 L40 -18 z" fill="${P.fur}"/><path d="M20 -26 L33 -52 L36 -22 z" fill="${P.cream}"/><path d="M30 -53 L34 -62 L36.5 -50 z" fill="${P.furDark}"/></g>`;
  return (
    ear(1) + ear(-1) +
    `<ellipse cx="0" cy="0" rx="40" ry="36" fill="${P.fur}"/>` +
    `<path d="M-40 4 q20 30 40 30 q20 0 40 -30 q-20 12 -40 12 q-20 0 -40 -12 z" fill="${P.cream}"/>` +
    `<ellipse cx="0" cy="12" rx="15" ry="11" fill="${P.cream}"/>` +
    `<path d="M0 -33 L3 -25 L11 -22 L3 -19 L0 -11 L-3 -19 L-11 -22 L-3 -25 z" fill="${P.star}"/>` +
    eyes(e) +
    `<ellipse cx="0" cy="7" rx="4.5" ry="3.2" fill="${P.ink}"/>` +
    mouth(e)
  );
}

/** The tail with its three orange rings and cream tip, clipped so the rings follow its outline. */
function tail(): string {
  const P = PALETTE;
  const shape = 'M0 0 C40 -10 70 -40 62 -80 C58 -100 40 -104 34 -90 C44 -60 24 -30 -6 -18 z';
  return (
    `<defs><clipPath id="tailclip"><path d="${shape}"/></clipPath></defs>` +
    `<path d="${shape}" fill="${P.fur}"/>` +
    `<g clip-path="url(#tailclip)">` +
    [-30, -50, -70].map((y) => `<rect x="-10" y="${y}" width="90" height="8" fill="${P.star}" transform="rotate(-12 30 ${y})"/>`).join('') +
    `<rect x="20" y="-110" width="60" height="24" fill="${P.cream}"/></g>`
  );
}

function scarf(): string {
  const P = PALETTE;
  return (
    `<rect x="-30" y="-8" width="60" height="13" rx="6" fill="${P.scarf}"/>` +
    `<path d="M12 2 l12 0 l-3 26 l-10 -2 z" fill="${P.scarfShade}"/>` +
    `<circle cx="-8" cy="10" r="7" fill="${P.brass}"/><circle cx="-8" cy="10" r="4.5" fill="#fff8e6"/><path d="M-8 6 l1.5 4 l-1.5 4 l-1.5 -4 z" fill="#d33"/>`
  );
}

function prop(p: Prop): string {
  switch (p) {
    case 'none':
    case 'umbrella':
    case 'lantern':
      return '';
    case 'map':
      return (
        '<g transform="translate(-30 28) rotate(-6)"><rect x="0" y="0" width="60" height="40" fill="#f3e2b3" stroke="#b08a4a" stroke-width="2"/>' +
        '<path d="M8 30 q14 -20 26 -6 t18 -14" stroke="#c0392b" stroke-width="2" stroke-dasharray="3 3" fill="none"/><path d="M46 6 l6 6 M52 6 l-6 6" stroke="#c0392b" stroke-width="2"/></g>'
      );
    case 'book':
      return '<g transform="translate(0 40)"><path d="M0 0 L-30 -6 L-30 18 L0 24 z" fill="#ffffff" stroke="#6b4a2b" stroke-width="2"/><path d="M0 0 L30 -6 L30 18 L0 24 z" fill="#f6f1e4" stroke="#6b4a2b" stroke-width="2"/></g>';
  }
}

/** The whole fox for one pose, in canvas coordinates. */
function fox(spec: ImageSpec): string {
  const P = PALETTE;
  // An arm hangs from its shoulder; rot 0 points down, ±135 raises it (SVG rotation is clockwise).
  const arm = (x: number, rot: number) => `<g transform="translate(${x} -14) rotate(${rot})"><ellipse cx="0" cy="14" rx="9" ry="20" fill="${P.fur}"/><circle cx="0" cy="32" r="7" fill="${P.furDark}"/></g>`;
  const legs = `<rect x="-24" y="30" width="16" height="34" rx="7" fill="${P.fur}"/><rect x="8" y="30" width="16" height="34" rx="7" fill="${P.fur}"/><ellipse cx="-16" cy="64" rx="11" ry="6" fill="${P.furDark}"/><ellipse cx="16" cy="64" rx="11" ry="6" fill="${P.furDark}"/>`;
  const body = `<ellipse cx="0" cy="12" rx="34" ry="40" fill="${P.fur}"/><ellipse cx="0" cy="20" rx="20" ry="28" fill="${P.cream}"/>`;
  const pose = spec.pose;
  if (pose === 'sleep') {
    // Curled up on the ground: body lying flat, tail wrapped in front, head resting on the left.
    return (
      `<g transform="translate(128 196)">` +
      `<ellipse cx="10" cy="-22" rx="62" ry="30" fill="${P.fur}"/>` +
      `<g transform="translate(60 -10) rotate(80)">${tail()}</g>` +
      `<g transform="translate(-40 -34) scale(0.85) rotate(-8)">${head('asleep')}</g>` +
      `<path d="M60 -90 h12 l-12 12 h12 M80 -110 h9 l-9 9 h9" stroke="#ffffff" stroke-width="2.5" fill="none"/>` +
      `</g>`
    );
  }
  const sitting = pose === 'sit';
  const lift = pose === 'jump' ? -34 : 0;
  const tilt = pose === 'run' ? -12 : 0;
  const ground = sitting ? 178 : 150;
  let armsSvg = arm(-32, 15) + arm(32, -15);
  if (pose === 'wave') armsSvg = arm(-32, 15) + arm(32, -140);
  if (pose === 'jump') armsSvg = arm(-32, 140) + arm(32, -140);
  if (pose === 'run') armsSvg = arm(-32, 45) + arm(32, -45);
  if (spec.prop === 'umbrella' || spec.prop === 'lantern') armsSvg = arm(-32, 15) + arm(32, -70);
  let legsSvg = sitting ? `<ellipse cx="-18" cy="50" rx="13" ry="8" fill="${P.furDark}"/><ellipse cx="18" cy="50" rx="13" ry="8" fill="${P.furDark}"/>` : legs;
  if (pose === 'run') legsSvg = `<g transform="rotate(25 -16 30)">${legs.split('<rect x="8"')[0]}</g><g transform="rotate(-25 16 30)"><rect x="8" y="30" width="16" height="34" rx="7" fill="${P.fur}"/><ellipse cx="16" cy="64" rx="11" ry="6" fill="${P.furDark}"/></g>`;
  let extra = '';
  if (spec.prop === 'umbrella') {
    extra = '<path d="M34 -38 L34 -120" stroke="#333" stroke-width="3"/><path d="M-36 -110 q70 -70 140 0 q-12 -8 -23 0 q-12 -8 -24 0 q-12 -8 -23 0 q-12 -8 -24 0 q-12 -8 -23 0 z" fill="#d6453d"/>';
  }
  if (spec.prop === 'lantern') {
    extra = '<circle cx="58" cy="-30" r="26" fill="#ffe9a8" opacity="0.35"/><path d="M48 -56 h20" stroke="#333" stroke-width="3"/><rect x="46" y="-50" width="24" height="30" rx="4" fill="#ffd25e" stroke="#5a4a2a" stroke-width="3"/>';
  }
  let motion = '';
  if (pose === 'jump') motion = `<ellipse cx="128" cy="${ground + 68}" rx="34" ry="6" fill="#000000" opacity="0.18"/>`;
  if (pose === 'run') motion = '<path d="M40 150 h36 M30 170 h40 M44 190 h30" stroke="#ffffff" stroke-width="3" stroke-linecap="round" opacity="0.8"/>';
  return (
    motion +
    `<g transform="translate(128 ${ground + lift}) rotate(${tilt})">` +
    `<g transform="translate(22 40)">${tail()}</g>` +
    (sitting ? '' : legsSvg) +
    body +
    (sitting ? legsSvg : '') +
    armsSvg +
    `<g transform="translate(0 -26)">${scarf()}</g>` +
    prop(spec.prop) +
    extra +
    `<g transform="translate(0 -62)">${head(spec.expression)}</g>` +
    `</g>`
  );
}

export function renderSvg(spec: ImageSpec, seed: number): string {
  const rng = new Rng(seed);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${SIZE}" height="${SIZE}" viewBox="0 0 ${SIZE} ${SIZE}">${background(spec.place, rng)}${fox(spec)}</svg>`;
}

/** PNG bytes. A transparent sticker (place `none`) keeps its alpha, like the RGBA sticker art of
 * RoleScape-20 (docs/dataset.md 2); the others are opaque RGB. */
export async function renderPng(spec: ImageSpec, seed: number): Promise<Uint8Array> {
  let img = sharp(Buffer.from(renderSvg(spec, seed)), { density: 72 });
  if (spec.place !== 'none') img = img.flatten({ background: '#ffffff' });
  const buf = await img.png({ compressionLevel: 9, adaptiveFiltering: false }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}
