import { createHmac, timingSafeEqual } from "node:crypto";

// Signed object URLs of the filesystem backend:
//   <base>/objects/<key>?method=PUT&expires=<unix seconds>&signature=<hex HMAC-SHA256>
// The signature covers the method, the key and the expiry (and, for an upload, the SHA-256 its
// bytes must have), so a URL grants exactly one kind of request on exactly one object until
// exactly that moment; nothing else authorizes it.

export const OBJECTS_PATH = "/objects/";

export type SignedMethod = "GET" | "PUT";

export interface SignedRequest {
  method: SignedMethod;
  key: string;
  expiresAtSeconds: number;
  /** For uploads: the lowercase hex SHA-256 the bytes must have. Signed with the rest. */
  sha256?: string;
}

export interface UrlSigner {
  /** The full URL for `request` under `baseUrl`. */
  url(baseUrl: string, request: SignedRequest): string;
  /**
   * The request a URL path + query authorize, or why they authorize nothing. Expiry is checked
   * by the caller, which owns the clock.
   */
  verify(pathAndQuery: string): SignedRequest | { refused: string };
}

export function createUrlSigner(signingKey: string): UrlSigner {
  const signatureOf = (request: SignedRequest): Buffer =>
    createHmac("sha256", signingKey)
      .update(`${request.method}\n${request.key}\n${request.expiresAtSeconds}${request.sha256 === undefined ? "" : `\n${request.sha256}`}`, "utf8")
      .digest();

  return {
    url(baseUrl, request) {
      const query = new URLSearchParams({
        method: request.method,
        expires: String(request.expiresAtSeconds),
        ...(request.sha256 === undefined ? {} : { sha256: request.sha256 }),
        signature: signatureOf(request).toString("hex"),
      });
      return `${baseUrl.replace(/\/+$/, "")}${OBJECTS_PATH}${encodeKey(request.key)}?${query.toString()}`;
    },

    verify(pathAndQuery) {
      const parsed = new URL(pathAndQuery, "http://signed.invalid");
      if (!parsed.pathname.startsWith(OBJECTS_PATH)) {
        return { refused: "not an object URL" };
      }
      const key = decodeKey(parsed.pathname.slice(OBJECTS_PATH.length));
      const method = parsed.searchParams.get("method");
      const expires = parsed.searchParams.get("expires") ?? "";
      const signature = parsed.searchParams.get("signature") ?? "";
      const sha256 = parsed.searchParams.get("sha256") ?? undefined;
      if (key === undefined || (method !== "GET" && method !== "PUT") || !/^\d{1,12}$/.test(expires)) {
        return { refused: "malformed signed URL" };
      }
      if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) {
        return { refused: "malformed signed URL" };
      }
      if (!/^[0-9a-f]{64}$/.test(signature)) {
        return { refused: "bad signature" };
      }
      const request: SignedRequest = { method, key, expiresAtSeconds: Number(expires), ...(sha256 === undefined ? {} : { sha256 }) };
      // Constant-time comparison: response timing must not reveal how much of a forgery matched.
      if (!timingSafeEqual(Buffer.from(signature, "hex"), signatureOf(request))) {
        return { refused: "bad signature" };
      }
      return request;
    },
  };
}

/** Each segment percent-encoded, '/' kept, so keys with subdirectories stay readable. */
function encodeKey(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

function decodeKey(encoded: string): string | undefined {
  try {
    return encoded.split("/").map(decodeURIComponent).join("/");
  } catch {
    return undefined; // malformed percent-encoding
  }
}
