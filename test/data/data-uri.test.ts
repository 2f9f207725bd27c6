// data: URIs: encoding covers only a view's bytes, and the payload reader accepts exactly
// `data:<type>;base64,` URIs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataUriPayload, toDataUri } from '../../src/data/index.js';

test('toDataUri encodes only the bytes of the view, not the whole buffer', () => {
  const buffer = new Uint8Array([9, 1, 2, 3, 9]);
  // [1, 2, 3] is 0x010203: base64 "AQID" (6-bit groups 0, 16, 8, 3).
  assert.equal(toDataUri(buffer.subarray(1, 4), 'image/png'), 'data:image/png;base64,AQID');
});

test('dataUriPayload returns the base64 text of a data URI and undefined for anything else', () => {
  assert.equal(dataUriPayload('data:image/jpeg;base64,AQID'), 'AQID');
  assert.equal(dataUriPayload('data:;base64,'), '');
  assert.equal(dataUriPayload('data:image/png,AQID'), undefined);
  assert.equal(dataUriPayload('embeded://avatar.png'), undefined);
  assert.equal(dataUriPayload('https://example.com/a.png'), undefined);
});
