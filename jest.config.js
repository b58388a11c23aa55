// One jest run covers every workspace. Tests are TypeScript compiled by swc (type checking is
// `tsc -b`'s job); packages import each other through their built dist/, which `npm test` builds.
// Two projects: the services, CLI and packages run under node; the browser console's component
// tests (web/) run under jsdom with TSX.
const swcOptions = {
  jsc: {
    parser: { syntax: "typescript", decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: "es2022",
  },
  module: { type: "commonjs" },
};

const swcWebOptions = {
  jsc: {
    parser: { syntax: "typescript", tsx: true },
    transform: { react: { runtime: "automatic" } },
    target: "es2022",
  },
  module: { type: "commonjs" },
};

const testTimeout = 30000;

// Most suites spend their time waiting on the processes they start (servers, runners, scripts),
// so two files at a time keep a two-core machine busy where jest's default (cores - 1) runs one.
const maxWorkers = Math.max(2, require("node:os").availableParallelism() - 1);

/** @type {import('jest').Config} */
module.exports = {
  testTimeout,
  maxWorkers,
  projects: [
    {
      displayName: "node",
      testEnvironment: "node",
      transform: { "^.+\\.ts$": ["@swc/jest", swcOptions] },
      testMatch: ["<rootDir>/{packages,services,cli}/**/test/**/*.test.ts", "<rootDir>/test/**/*.test.ts"],
      testPathIgnorePatterns: ["/node_modules/", "/dist/"],
      testTimeout,
    },
    {
      displayName: "web",
      // jsdom plus the web platform globals it lacks (fetch types, streams, TextEncoder, ...).
      testEnvironment: "<rootDir>/web/test/jsdom-environment.js",
      transform: { "^.+\\.tsx?$": ["@swc/jest", swcWebOptions] },
      testMatch: ["<rootDir>/web/test/**/*.test.{ts,tsx}"],
      testPathIgnorePatterns: ["/node_modules/", "/dist/"],
      testTimeout,
    },
  ],
};
