// Category of each RoleScape-20 character (docs/dataset.md 2: 9 human, 4 animal, 7 anime, following
// the paper's overview figure). Not recorded in any data file, so it is kept here.
import type { Category } from './character.js';

const HUMANS = new Set(['Adrien Brody', 'Coco', 'Friends-Chandler', 'Friends-Joey', 'Gao Qiqiang', 'Harry Potter-Hermione', 'Leonardo', 'Will In Vietnam', 'Wukong']);
const ANIMALS = new Set(['Bo', 'Butin', 'Mam', 'Mydieu']);
// The project's own sample character (samples/) is a cartoon mascot.
const ANIME_PREFIXES = ['Genshin-', 'Mahjong Soul-', 'Pokemon-', 'UniCharacter-'];

export function categoryOf(folder: string): Category {
  if (ANIMALS.has(folder)) return 'animal';
  if (ANIME_PREFIXES.some((p) => folder.startsWith(p))) return 'anime';
  if (HUMANS.has(folder)) return 'human';
  return 'other';
}
