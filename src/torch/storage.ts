// A tensor's storage as memory that can be dropped and regrown in place. Fully sharded
// parameters are views of one flat buffer per layer; freeing the buffer's storage frees the
// layer's whole weights at once, including the references autograd saved for the backward,
// and regrowing it (then gathering into it) brings them all back (docs/sharding.md section 3).
import { native } from './native.js';
import { checkLiveTensor, type Tensor } from './tensor.js';

/**
 * Frees (nbytes 0) or reallocates the storage under `t` and every view of it. After a regrow the
 * contents are undefined until written; a view must not be read while its storage is freed.
 */
export function resizeStorage(t: Tensor, nbytes: number): void {
  const fn = 'resizeStorage()';
  checkLiveTensor(t, 'tensor', fn);
  if (!Number.isSafeInteger(nbytes) || nbytes < 0) throw new TypeError(`${fn}: nbytes must be an integer >= 0 (got ${String(nbytes)})`);
  native.resizeStorage(t.id, nbytes);
}

/** The bytes the storage under `t` holds now (0 while freed). */
export function storageBytes(t: Tensor): number {
  return native.storageBytes(checkLiveTensor(t, 'tensor', 'storageBytes()').id);
}
