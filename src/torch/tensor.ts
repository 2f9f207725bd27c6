// The Tensor class: a handle on a libtorch tensor. Operators come from ops.generated.ts,
// which adds them to this class's prototype; this file holds what cannot be generated:
// metadata, read-back, autograd entry points, conversion and lifetime.
import { inspect } from 'node:util';
import { native, type TensorId } from './native.js';
import { adopt, keep, release, type Owned } from './lifetime.js';
import { type DType, isDType, typedArrayFor, type TypedArray } from './dtype.js';

export type Device = string; // 'cpu', 'cuda', 'cuda:1'
export type Scalar = number | boolean | bigint;
export type NestedArray<T> = T | NestedArray<T>[];

let toOp = -1;

export class Tensor implements Owned {
  /** Index into the addon's handle table; -1 once disposed. */
  id: TensorId;
  _life = 0;

  constructor(id: TensorId) {
    this.id = id;
    adopt(this);
  }

  get shape(): number[] {
    return native.shape(this.id);
  }
  get ndim(): number {
    return native.shape(this.id).length;
  }
  get dtype(): DType {
    return native.dtype(this.id) as DType;
  }
  get device(): Device {
    return native.device(this.id);
  }
  get numel(): number {
    return native.numel(this.id);
  }
  get isDisposed(): boolean {
    return this.id < 0;
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.id);
  }
  set requiresGrad(value: boolean) {
    native.setRequiresGrad(this.id, value);
  }
  /** Sets requires_grad and returns this (for chaining). */
  requiresGrad_(value = true): this {
    native.setRequiresGrad(this.id, value);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.id);
  }
  /** A new handle on the accumulated gradient (owned by the current scope), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.id);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.id, g === null ? null : g.id);
  }
  /** Backpropagates from this tensor; a non-scalar needs an explicit gradient. */
  backward(gradient?: Tensor | null, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward(this.id, gradient ? gradient.id : null, options.retainGraph, options.createGraph ?? false);
  }

  // ---- read-back ----
  /** The data as a flat typed array (a copy; f16/bf16 as raw Uint16 bits, bool as Uint8). */
  dataSync(): TypedArray {
    return typedArrayFor(this.dtype, native.toBuffer(this.id));
  }
  /** The data as nested JS arrays of numbers (booleans for bool tensors). */
  toArray(): NestedArray<number | boolean> {
    const shape = this.shape;
    const dtype = this.dtype;
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const f = this.to('float32');
      try {
        return f.toArray();
      } finally {
        f.dispose();
      }
    }
    const data = this.dataSync();
    const flat: (number | boolean)[] = new Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      flat[i] = dtype === 'bool' ? v !== 0 : typeof v === 'bigint' ? Number(v) : v;
    }
    return nest(flat, shape, 0, 0).value;
  }
  /** The value of a one-element tensor. */
  item(): number {
    const v = native.item(this.id);
    return typeof v === 'boolean' ? (v ? 1 : 0) : v;
  }

  /** Converts dtype and/or device; returns this tensor's data in a new tensor (or a view when nothing changes). */
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    let dtype: DType | undefined;
    let device: Device | undefined;
    if (typeof target === 'string') {
      if (isDType(target)) dtype = target;
      else device = target;
    } else {
      dtype = target.dtype;
      device = target.device;
    }
    if (toOp < 0) toOp = native.opId('to', 'dtype_layout');
    return new Tensor(native.call(toOp, this.id, dtype, undefined, device));
  }

  // ---- lifetime ----
  /** Frees the native memory now. Using the tensor afterwards is an error. */
  dispose(): void {
    release(this);
  }
  [Symbol.dispose](): void {
    release(this);
  }
  /** Takes this tensor out of scope ownership: it survives every enclosing scope. */
  keep(): this {
    return keep(this);
  }

  toString(): string {
    if (this.id < 0) return 'Tensor(disposed)';
    const shape = this.shape;
    const n = shape.reduce((a, b) => a * b, 1);
    const head = `Tensor(shape=[${shape.join(', ')}], dtype=${this.dtype}, device=${this.device}`;
    if (n > 1000) return head + ')';
    return `${head})\n${native.toString(this.id)}`;
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

function nest(flat: (number | boolean)[], shape: number[], dim: number, offset: number): { value: any; next: number } {
  if (dim === shape.length) return { value: flat[offset], next: offset + 1 };
  const out: unknown[] = [];
  let at = offset;
  for (let i = 0; i < shape[dim]!; i++) {
    const r = nest(flat, shape, dim + 1, at);
    out.push(r.value);
    at = r.next;
  }
  return { value: out, next: at };
}

export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

/** `t` as a live Tensor, or a TypeError naming the argument (`what`) and the function (`fn`). */
export function checkLiveTensor(t: unknown, what: string, fn: string): Tensor {
  if (!isTensor(t)) throw new TypeError(`${fn}: ${what} must be a Tensor`);
  if (t.isDisposed) throw new TypeError(`${fn}: ${what} is a disposed Tensor`);
  return t;
}
