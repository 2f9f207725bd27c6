// Reply images for clients that read only `message.content` (docs/serving.md 4): with the
// server's `imageLinks` setting, each reply image is also a markdown image link in the content,
// to /v1/images/<hash> on this server. A browser fetches an <img> without the Authorization
// header, so when the server has an API key the link carries `sig`, an HMAC of the hash under
// the key: it opens that one image and nothing else. Links coming back in the history are cut
// out before the model sees the text.
import { createHmac, timingSafeEqual } from 'node:crypto';

const IMAGE_PATH = /^\/v1\/images\/([0-9a-f]{64})$/;

/** The signature of an image URL under the API key. */
export function imageSignature(key: string, hash: string): string {
  return createHmac('sha256', key).update(`image:${hash}`).digest('hex').slice(0, 32);
}

/** The markdown of a reply image: `![image](<base>/v1/images/<hash>[?sig=...])`. */
export function imageLinkMarkdown(base: string, hash: string, key?: string): string {
  return `![image](${base}/v1/images/${hash}${key ? `?sig=${imageSignature(key, hash)}` : ''})`;
}

/** Whether a request URL is an image URL signed under the key (the key check lets it through). */
export function isSignedImageUrl(url: string, key: string): boolean {
  const q = url.indexOf('?');
  const m = IMAGE_PATH.exec(q < 0 ? url : url.slice(0, q));
  if (!m || q < 0) return false;
  const sig = new URLSearchParams(url.slice(q + 1)).get('sig') ?? '';
  const want = imageSignature(key, m[1]!);
  return sig.length === want.length && timingSafeEqual(Buffer.from(sig), Buffer.from(want));
}

const LINK = /\n*!\[[^\]\n]*\]\([^)\s]*\/v1\/images\/[0-9a-f]{64}(?:\?[^)\s]*)?\)/g;

/** Text with this server's image links removed (what an assistant turn said, without them). */
export function stripImageLinks(text: string): string {
  return text.replace(LINK, '');
}
