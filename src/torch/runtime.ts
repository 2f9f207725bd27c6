// Threads, seeds and devices.
import { native } from './native.js';
import { Tensor } from './tensor.js';

/** Intra-op threads libtorch uses on the CPU. */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
/** Seeds the global generator: random ops then repeat exactly. */
export function manualSeed(seed: number | bigint): void {
  native.manualSeed(seed);
}
/** The CPU generator state (a uint8 tensor), for checkpoints. */
export function getRngState(): Tensor {
  return new Tensor(native.getRngState());
}
export function setRngState(state: Tensor): void {
  native.setRngState(state.id);
}
/** The libtorch version the addon was built against. */
export function version(): string {
  return native.version();
}
export const cuda = {
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
};
