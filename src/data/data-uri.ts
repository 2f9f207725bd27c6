// `data:` URIs (RFC 2397) with base64 payloads: the one way images travel inside card JSON,
// chat messages and reports. Strict checking of untrusted URIs stays with the caller (the
// server's limits, the card importer's strict base64).

/** `data:<mime>;base64,<bytes>` for a view of any buffer (only the view's bytes are encoded). */
export function toDataUri(bytes: Uint8Array, mime: string): string {
  return `data:${mime};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

/** The base64 text of a `data:...;base64,` URI, or undefined when `uri` is not one. */
export function dataUriPayload(uri: string): string | undefined {
  const m = /^data:[^;,]*;base64,(.*)$/s.exec(uri);
  return m ? m[1]! : undefined;
}
