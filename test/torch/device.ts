// The device the engine, model and planner tests that take one run on: UNICHAR_TEST_DEVICE =
// cpu (the default) | cuda | cuda:N. scripts/device-check.sh sets it to cuda on a GPU machine.
import * as torch from '../../src/torch/index.js';

/** The test device from the environment; an error naming the variable for a bad or absent device. */
export function testDevice(env: Record<string, string | undefined> = process.env): torch.Device {
  const v = env.UNICHAR_TEST_DEVICE;
  if (v === undefined || v === '' || v === 'cpu') return 'cpu';
  const m = /^cuda(?::(\d+))?$/.exec(v);
  if (!m) throw new Error(`UNICHAR_TEST_DEVICE must be cpu, cuda or cuda:N, got '${v}'`);
  if (!torch.cuda.isAvailable()) {
    throw new Error(`UNICHAR_TEST_DEVICE=${v}, but this addon sees no CUDA device (built without CUDA, or no GPU): unset it to test on the CPU`);
  }
  const index = m[1] === undefined ? 0 : Number(m[1]);
  const count = torch.cuda.deviceCount();
  if (index >= count) throw new Error(`UNICHAR_TEST_DEVICE=${v}, but the addon sees ${count} CUDA device(s)`);
  return v;
}
