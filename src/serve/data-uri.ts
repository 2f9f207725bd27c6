// `data:image/png;base64,...` → bytes, checked: base64 alphabet, a size limit, and the bytes must
// really be an image (the declared type is not trusted). Only data URIs are accepted: the server
// never fetches a URL a request names (docs/architecture.md "Security"; all traffic stays local).
import { ApiError } from './errors.js';
import { imageMime } from './images.js';

const DATA_URI = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?((?:;[a-z0-9-]+=[^;,]*)*);base64,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeImageDataUri(uri: string, param: string, maxBytes: number): { bytes: Uint8Array; mime: string } {
  const m = DATA_URI.exec(uri);
  if (!m) {
    const why = /^https?:/i.test(uri) ? 'remote image URLs are not fetched; send the image as a data: URI (data:image/png;base64,...)' : 'expected a data:image/...;base64 URI';
    throw new ApiError(400, `${param}: ${why}`, 'invalid_request_error', param, 'invalid_image_url');
  }
  const b64 = uri.slice(m[0].length).replace(/\s+/g, '');
  // 4 base64 characters carry 3 bytes: refuse before decoding anything large.
  if (Math.floor((b64.length * 3) / 4) > maxBytes + 2) throw new ApiError(413, `${param}: image is larger than ${maxBytes} bytes`, 'invalid_request_error', param, 'image_too_large');
  if (b64.length % 4 !== 0 || !BASE64.test(b64)) throw new ApiError(400, `${param}: invalid base64 data`, 'invalid_request_error', param, 'invalid_image_url');
  const bytes = new Uint8Array(Buffer.from(b64, 'base64'));
  if (bytes.length > maxBytes) throw new ApiError(413, `${param}: image is larger than ${maxBytes} bytes`, 'invalid_request_error', param, 'image_too_large');
  const mime = imageMime(bytes);
  if (!mime) throw new ApiError(400, `${param}: the data is not a PNG, JPEG, WebP or GIF image`, 'invalid_request_error', param, 'invalid_image');
  return { bytes, mime };
}

