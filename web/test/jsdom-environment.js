// jsdom with the web platform globals a browser has and jsdom lacks, taken from node's own
// implementations: the Connect transports and React need them.
const { TestEnvironment } = require("jest-environment-jsdom");

const fromNode = [
  "TextEncoder",
  "TextDecoder",
  "ReadableStream",
  "WritableStream",
  "TransformStream",
  "Headers",
  "Request",
  "Response",
  "structuredClone",
];

class WebTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of fromNode) {
      if (this.global[name] === undefined) this.global[name] = globalThis[name];
    }
    const crypto = this.global.crypto;
    if (crypto === undefined || typeof crypto.randomUUID !== "function") {
      Object.defineProperty(this.global, "crypto", { value: require("node:crypto").webcrypto, configurable: true });
    }
  }
}

module.exports = WebTestEnvironment;
