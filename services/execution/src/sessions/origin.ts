// A session cookie is a credential the browser attaches by itself, so a request carrying one
// must come from the console's own pages; any other page must use an API key (and CORS).

/**
 * Why a cookie-authenticated request may not be honoured, or undefined when it may: the browser's
 * Origin (sent on every cross-origin request and on same-origin POSTs) must be the server's own,
 * and Sec-Fetch-Site, where the browser sends it, must say same-origin. Clients that are not
 * browsers send neither; SameSite=Strict already keeps other sites from making browsers send
 * the cookie, and this check holds even where a browser ignores SameSite.
 */
export function foreignOriginProblem(requestUrl: string, headers: Headers): string | undefined {
  const origin = headers.get("origin");
  if (origin !== null && origin !== ownOrigin(requestUrl, headers)) {
    return `requests from ${origin.slice(0, 200)} cannot use the console's session; use an API key`;
  }
  const fetchSite = headers.get("sec-fetch-site");
  if (fetchSite !== null && fetchSite !== "same-origin" && fetchSite !== "none") {
    return "requests from other sites cannot use the console's session; use an API key";
  }
  return undefined;
}

/**
 * The scheme, host and port the request was addressed to, as a browser spells an origin. Behind a
 * proxy that ends TLS, the proxy's X-Forwarded-Proto names the scheme the browser used.
 */
function ownOrigin(requestUrl: string, headers: Headers): string | undefined {
  try {
    const url = new URL(requestUrl);
    url.protocol = `${forwardedProto(headers) ?? url.protocol.slice(0, -1)}:`;
    return url.origin;
  } catch {
    return undefined;
  }
}

function forwardedProto(headers: Headers): "http" | "https" | undefined {
  const proto = headers.get("x-forwarded-proto")?.split(",", 1)[0]?.trim().toLowerCase();
  return proto === "http" || proto === "https" ? proto : undefined;
}

/** Whether the browser's connection was TLS (here or at a proxy): the cookie is then Secure. */
export function isSecureRequest(requestUrl: string, headers: Headers): boolean {
  return (forwardedProto(headers) ?? (requestUrl.startsWith("https:") ? "https" : "http")) === "https";
}
