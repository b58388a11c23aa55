import * as http2 from "node:http2";
import * as tls from "node:tls";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@rgrid/proto";
import { registerHealth } from "../src/health";
import { silentLogger } from "../src/logger";
import { createConnectServer } from "../src/server";
import type { RunningServer } from "../src/server";
import type { SelfSignedCertificate } from "./self-signed";
import { createSelfSignedCertificate, opensslAvailable } from "./self-signed";

const describeWithOpenssl = opensslAvailable ? describe : describe.skip;

describeWithOpenssl("one TLS port (skipped when the openssl CLI is missing)", () => {
  let certificate: SelfSignedCertificate;
  let server: RunningServer;

  beforeAll(async () => {
    certificate = await createSelfSignedCertificate();
    server = await createConnectServer({
      routes: (router) => registerHealth(router, ["rgrid.v1.Example"]),
      // Answers plain requests with the HTTP version the server saw them arrive in.
      fallback: (req, res) => {
        res.writeHead(200, { "content-type": "text/plain", "content-length": String(req.httpVersion.length) });
        res.end(req.httpVersion);
      },
      readMaxBytes: 1024,
      tls: { cert: certificate.cert, key: certificate.key },
      logger: silentLogger,
    }).listen(0, "127.0.0.1");
  });

  afterAll(async () => {
    await server.close(1000);
    await certificate.remove();
  });

  /** The protocol the server picks by ALPN when a client offers only `offered`. */
  const negotiate = (offered: string[]): Promise<string | false> =>
    new Promise((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port: server.port, ca: certificate.cert, ALPNProtocols: offered },
        () => {
          resolve(socket.alpnProtocol ?? false);
          socket.end();
        },
      );
      socket.once("error", reject);
    });

  test("the listening URL says https", () => {
    expect(server.url).toBe(`https://127.0.0.1:${server.port}`);
  });

  test("ALPN picks h2 for HTTP/2 clients and http/1.1 for the others", async () => {
    expect(await negotiate(["h2", "http/1.1"])).toBe("h2");
    expect(await negotiate(["http/1.1"])).toBe("http/1.1");
  });

  const transports = {
    "gRPC over HTTP/2": () => createGrpcTransport({ baseUrl: server.url, nodeOptions: { ca: certificate.cert } }),
    "Connect over HTTP/2": () =>
      createConnectTransport({ baseUrl: server.url, httpVersion: "2", nodeOptions: { ca: certificate.cert } }),
    "Connect over HTTP/1.1": () =>
      createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions: { ca: certificate.cert } }),
    "gRPC-Web over HTTP/1.1": () =>
      createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1", nodeOptions: { ca: certificate.cert } }),
  };

  test.each(Object.entries(transports))("%s is answered on the same port", async (_name, makeTransport) => {
    const health = createClient(Health, makeTransport());
    expect((await health.check({ service: "rgrid.v1.Example" })).status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  test("plain requests arrive over the protocol ALPN picked", async () => {
    const overHttp1 = await new Promise<string>((resolve, reject) => {
      const socket = tls.connect(
        { host: "127.0.0.1", port: server.port, ca: certificate.cert, ALPNProtocols: ["http/1.1"] },
        () => socket.write("GET /plain HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
      );
      let response = "";
      socket.on("data", (chunk: Buffer) => (response += chunk.toString()));
      socket.once("end", () => resolve(response));
      socket.once("error", reject);
    });
    expect(overHttp1).toMatch(/^HTTP\/1\.1 200[\s\S]*\r\n\r\n1\.1$/);

    const session = http2.connect(server.url, { ca: certificate.cert });
    try {
      const overHttp2 = await new Promise<string>((resolve, reject) => {
        const stream = session.request({ ":path": "/plain" });
        let body = "";
        stream.on("data", (chunk: Buffer) => (body += chunk.toString()));
        stream.once("end", () => resolve(body));
        stream.once("error", reject);
      });
      expect(overHttp2).toBe("2.0");
    } finally {
      session.close();
    }
  });
});

if (!opensslAvailable) {
  describe.skip("one TLS port (skipped: the openssl CLI is not installed)", () => {
    test("needs openssl", () => undefined);
  });
}
