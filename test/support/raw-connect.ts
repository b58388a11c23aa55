// Requests a typed client cannot send: bodies with wrong JSON types, or protobuf bytes that are
// not valid UTF-8 where a string belongs. They are posted as Connect unary calls with fetch, and
// the answer's Connect error code is read from the JSON error body the protocol defines.

export type RawBody = { contentType: "application/json"; body: string } | { contentType: "application/proto"; body: Uint8Array };

export interface RawAnswer {
  httpStatus: number;
  /** The Connect code name ("invalid_argument", …), or "ok" for a successful call. */
  code: string;
}

export async function postRawConnect(baseUrl: string, procedure: string, request: RawBody, apiKey: string): Promise<RawAnswer> {
  const response = await fetch(`${baseUrl}/${procedure}`, {
    method: "POST",
    headers: {
      "content-type": request.contentType,
      "connect-protocol-version": "1",
      authorization: `Bearer ${apiKey}`,
    },
    body: request.body,
  });
  const text = await response.text();
  if (response.ok) {
    return { httpStatus: response.status, code: "ok" };
  }
  // Connect unary errors are always JSON, whatever the request's content type.
  const parsed = JSON.parse(text) as { code?: unknown };
  return { httpStatus: response.status, code: typeof parsed.code === "string" ? parsed.code : `unparsed: ${text.slice(0, 200)}` };
}

// The smallest protobuf encoder that can write what a correct encoder never would.

export function varint(value: number): number[] {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return bytes;
}

/** A length-delimited field (wire type 2): a string, bytes or a nested message. */
export function lengthDelimited(fieldNumber: number, payload: readonly number[]): number[] {
  return [...varint((fieldNumber << 3) | 2), ...varint(payload.length), ...payload];
}

/** A varint field (wire type 0). */
export function varintField(fieldNumber: number, value: number): number[] {
  return [...varint((fieldNumber << 3) | 0), ...varint(value)];
}

export const utf8 = (text: string): number[] => [...Buffer.from(text, "utf8")];

/** Byte sequences that are not UTF-8: a lone continuation, an overlong form, a surrogate, 0xFF. */
export const INVALID_UTF8: readonly (readonly number[])[] = [
  [0x80],
  [0xc0, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xff, 0xfe],
  [0xe2, 0x82],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
];
