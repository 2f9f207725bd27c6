// Public surface of the model layer (docs/method.md 1).
export * from './config.js';
export * from './embeddings.js';
export * from './mot.js';
export * from './vae.js';
export * from './siglip.js';
export * from './bagel.js';
export * from './packed.js';
export * from './training.js';
export * from './sampling.js';
export * from './inference.js';
export * from './checkpoint.js';
export * from './folder.js';
