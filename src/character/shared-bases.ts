// One copy of each base in memory for every LoRA character over it (docs/serving.md 10). A base
// is keyed by its resolved weight paths, their SHA-256 and the model config; each character
// gets its own module tree whose tensors are the base's (src/nn/share.ts), so its adapters are
// its own and no request ever has to swap them in or out.
import { createHash } from 'node:crypto';
import { sharingTensors } from '../nn/index.js';
import { AutoEncoder, Bagel, type ModelConfig } from '../model/index.js';
import { checkBaseFile, type BaseReference } from './base-ref.js';
import { checkDeclaredSize } from './model-folder.js';
import { loadModelAndVae } from './load-weights.js';

interface BaseEntry {
  key: string;
  model: Bagel;
  vae: AutoEncoder;
  /** Bytes the base's tensors took when loaded (torch.memory()). */
  bytes: number;
  modelPath: string;
  users: Set<string>;
}

/** A character's private trees over a shared base; `release` when the character is freed. */
export interface BaseLease {
  key: string;
  model: Bagel;
  vae: AutoEncoder;
  /** Bytes of the base (measured when it was loaded). */
  baseBytes: number;
  /** Whether this call loaded the base (false: it was already in memory). */
  loaded: boolean;
  release(): void;
}

export interface SharedBaseReport {
  key: string;
  model: string;
  bytes: number;
  /** The character folders using it. */
  users: string[];
}

export class SharedBases {
  private readonly bases = new Map<string, BaseEntry>();

  /** The registry key of a base: resolved files, their hashes, and the config they are read into. */
  static key(model: string, vae: string, ref: BaseReference, config: ModelConfig): string {
    const cfg = createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
    return `${model}#${ref.model.sha256.slice(0, 16)}|${vae}#${ref.vae.sha256.slice(0, 16)}|config#${cfg}`;
  }

  /** The base `ref` names, loaded once and checked (size, then SHA-256), as trees for `user`. */
  acquire(ref: BaseReference, config: ModelConfig, user: string): BaseLease {
    const modelPath = checkBaseFile(ref.model, 'model', user);
    const vaePath = checkBaseFile(ref.vae, 'vae', user);
    const key = SharedBases.key(modelPath, vaePath, ref, config);
    let entry = this.bases.get(key);
    const loaded = !entry;
    if (!entry) {
      checkDeclaredSize(user, config, { model: modelPath, vae: vaePath });
      entry = this.load(key, modelPath, vaePath, config);
      this.bases.set(key, entry);
    }
    const e = entry;
    const model = sharingTensors(() => new Bagel(config), e.model).eval();
    const vae = sharingTensors(() => new AutoEncoder(config.vae), e.vae).eval();
    e.users.add(user);
    let released = false;
    return {
      key, model, vae, baseBytes: e.bytes, loaded,
      release: () => {
        if (released) return;
        released = true;
        model.dispose();
        vae.dispose();
        e.users.delete(user);
        if (e.users.size === 0) this.drop(e);
      },
    };
  }

  private load(key: string, modelPath: string, vaePath: string, config: ModelConfig): BaseEntry {
    const { model, vae, bytes } = loadModelAndVae(modelPath, vaePath, config);
    return { key, model, vae, bytes, modelPath, users: new Set() };
  }

  private drop(e: BaseEntry): void {
    this.bases.delete(e.key);
    e.model.dispose();
    e.vae.dispose();
  }

  /** The bases in memory, with their measured bytes and users. */
  report(): SharedBaseReport[] {
    return [...this.bases.values()].map((e) => ({ key: e.key, model: e.modelPath, bytes: e.bytes, users: [...e.users].sort() }));
  }
}
