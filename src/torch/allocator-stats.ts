// Bytes the allocator has handed out, now and at peak (what torch.cuda.memory_allocated and
// max_memory_allocated report): the measured side of the memory planner (docs/planner.md 4).
// On CUDA these are the caching allocator's own counters. libtorch keeps none for the CPU, so
// trackCpuAllocations() puts a counting allocator in front of the default one for the rest of
// the process; storages allocated before that call are not counted.
import { native } from './native.js';
import type { Device } from './tensor.js';

export interface AllocatedBytes {
  /** Bytes in live storages now. */
  current: number;
  /** The most bytes live at once since tracking began or resetPeakAllocated. */
  peak: number;
}

/** Starts counting CPU allocations (idempotent; cannot be undone in this process). */
export function trackCpuAllocations(): void {
  native.trackCpuAllocations();
}

/** Allocated bytes on 'cpu' (after trackCpuAllocations, else null) or 'cuda[:i]'. */
export function allocatedBytes(device: Device = 'cpu'): AllocatedBytes | null {
  return native.allocatorStats(device);
}

/** Starts a new peak at the current allocation. */
export function resetPeakAllocated(device: Device = 'cpu'): void {
  native.resetPeakAllocated(device);
}
