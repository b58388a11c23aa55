// `npm run bundle`: the compiled CLI (dist/main.js and what it loads) as one file, dist/rgrid.cjs,
// which bin/rgrid.js runs. One file is read and compiled once instead of resolving and reading
// hundreds of modules, each a few system calls, on every command. Modules the CLI loads lazily
// (src/lazy.ts) stay lazy: they are bundled, but run only when first required.
export default {
  input: "dist/main.js",
  platform: "node",
  output: { file: "dist/rgrid.cjs", format: "cjs", codeSplitting: false },
};
