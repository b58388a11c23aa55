// The console's session cookie: how it is written on sign-in and sign-out, and read back.

export const SESSION_COOKIE = "rgrid_session";

/**
 * httpOnly keeps the token from page scripts; SameSite=Strict keeps other sites' pages from
 * sending it; Secure (under TLS) keeps it off plain-text connections.
 */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${token}`,
    "Path=/",
    `Max-Age=${maxAgeSeconds}`,
    "HttpOnly",
    "SameSite=Strict",
    ...(secure ? ["Secure"] : []),
  ].join("; ");
}

/** Tells the browser to forget the cookie (sign-out). */
export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie("", 0, secure);
}

/** The session token from a Cookie header, or undefined; a malformed header names no session. */
export function sessionTokenFrom(cookieHeader: string | null): string | undefined {
  if (cookieHeader === null) {
    return undefined;
  }
  for (const pair of cookieHeader.split(";")) {
    const separator = pair.indexOf("=");
    if (separator > 0 && pair.slice(0, separator).trim() === SESSION_COOKIE) {
      const value = pair.slice(separator + 1).trim();
      return /^[A-Za-z0-9_-]{20,100}$/.test(value) ? value : undefined;
    }
  }
  return undefined;
}
