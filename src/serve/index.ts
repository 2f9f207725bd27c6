// Public surface of src/serve (docs/architecture.md "Layers"): the server, its state, and the
// `ChatEngine` seam between the HTTP routes and what answers them (model-engine.ts implements it
// over the character runtime; tests may give their own).
export { startServer, checkBindHost, DEFAULT_HOST, DEFAULT_PORT, type ServerOptions, type RunningServer } from './server.js';
export { buildApp, DEFAULT_TIMEOUTS, type AppOptions, type ServeTimeouts } from './app.js';
export { DEFAULT_LIMITS, type ServeLimits } from './context.js';
export { Store, migrate, MIGRATIONS, type CharacterRow, type ChatRow, type MessageRow, type JobRow, type NewMessage, type Role, type JobKind, type JobStatus } from './db.js';
export { ImageStore, sha256Hex, isImageHash, imageMime, type PutResult } from './images.js';
export { CharacterLibrary, slugify, isCharacterId, characterJson, IMAGE_URI_PREFIX } from './characters.js';
export {
  RequestQueue,
  QueueFullError,
  ClientGoneError,
  type ChatEngine,
  type ChatRequest,
  type ChatResult,
  type ChatOptions,
  type ChatMessage,
  type ContentPart,
  type ImageRequest,
  type ImageRequestOptions,
  type GeneratedImage,
  type EngineModel,
  type Usage,
  type Modality,
  type Lease,
} from './engine.js';
export { ModelChatEngine, DEFAULT_MAX_BATCH } from './model-engine.js';
export { ApiError, errorBody, toApiError, type ErrorBody, type ErrorType } from './errors.js';
