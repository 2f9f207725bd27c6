// Field readers for transformers config.json files (CLIP, DINOv2, BLIP): a field that is absent or
// of another type takes transformers' default, as from_pretrained does.
export type HfConfigJson = Record<string, unknown>;

/** o[key] when it is a number, else dflt. */
export const num = (o: HfConfigJson, key: string, dflt: number): number => (typeof o[key] === 'number' ? (o[key] as number) : dflt);

/** o[key] when it is a string, else dflt. */
export const str = (o: HfConfigJson, key: string, dflt: string): string => (typeof o[key] === 'string' ? (o[key] as string) : dflt);
