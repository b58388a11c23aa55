#!/usr/bin/env node
// The `rgrid` command. A command lives a few hundred milliseconds, and most of that went to
// loading and compiling JavaScript, not to its work. So it runs the CLI as one bundled file
// (dist/rgrid.cjs, made by `npm run bundle`), compiled with V8's code cache: the bytecode of the
// first run is kept in the user's cache directory, and later runs of the same bundle on the same
// Node start from it. Node 20 keeps no such cache of its own. The cache only saves time: if it
// cannot be read or written, or V8 rejects it, the bundle is compiled from its source as usual.
// A build without the bundle runs the compiled modules one by one.
"use strict";
const { createHash } = require("node:crypto");
const { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } = require("node:fs");
const Module = require("node:module");
const { homedir } = require("node:os");
const { dirname, isAbsolute, join } = require("node:path");
const { Script } = require("node:vm");

const BUNDLE = join(__dirname, "..", "dist", "rgrid.cjs");

/** The user's cache directory for rgrid (XDG: $XDG_CACHE_HOME, else ~/.cache). */
function cacheDirectory() {
  const xdg = process.env.XDG_CACHE_HOME;
  return join(xdg !== undefined && isAbsolute(xdg) ? xdg : join(homedir(), ".cache"), "rgrid");
}

function readOrUndefined(path) {
  try {
    return readFileSync(path);
  } catch {
    return undefined;
  }
}

/** Keeps `script`'s code cache at `path`, whole or not at all (concurrent commands may race). */
function keepCodeCache(script, path) {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const partial = `${path}.${process.pid}`;
    writeFileSync(partial, script.createCachedData(), { mode: 0o600 });
    renameSync(partial, path);
  } catch {
    // Read-only home, full disk: the next command compiles from source again.
  }
}

function runBundle() {
  const source = readFileSync(BUNDLE, "utf8");
  // Named by what V8 compiled: this bundle, on this Node and architecture.
  const key = createHash("sha256").update(source).update(process.version).update(process.arch).digest("hex").slice(0, 32);
  const cachePath = join(cacheDirectory(), `compiled-${key}.bin`);
  const cachedData = readOrUndefined(cachePath);
  const script = new Script(Module.wrap(source), { filename: BUNDLE, cachedData });
  if (cachedData === undefined || script.cachedDataRejected === true) {
    // At exit, so that the cache holds every function the command compiled, not only the top level.
    process.once("exit", () => keepCodeCache(script, cachePath));
  }
  const bundleModule = new Module(BUNDLE, module);
  bundleModule.filename = BUNDLE;
  script.runInThisContext().call(bundleModule.exports, bundleModule.exports, Module.createRequire(BUNDLE), bundleModule, BUNDLE, dirname(BUNDLE));
}

if (existsSync(BUNDLE)) {
  runBundle();
} else {
  require("../dist/main.js");
}
