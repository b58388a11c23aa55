import { defineConfig } from "vite";

// The console is served by execution-service under a strict Content-Security-Policy
// (script-src 'self'; style-src 'self'): the build must emit external scripts and stylesheets
// only, with no inline bootstrap code. `npm run dev -w @rgrid/web` proxies the API to a running
// local grid (RGRID_API_URL, default http://127.0.0.1:7400).
const apiUrl = process.env.RGRID_API_URL ?? "http://127.0.0.1:7400";

export default defineConfig({
  root: import.meta.dirname,
  base: "/",
  // JSX through Vite's own transform, React's automatic runtime (no plugin-react).
  oxc: { jsx: { runtime: "automatic", importSource: "react" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    // The polyfill is an inline script, which the CSP forbids.
    modulePreload: { polyfill: false },
    // Never turn assets into data: URIs inside CSS or JS.
    assetsInlineLimit: 0,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: true,
    rolldownOptions: {
      onwarn(warning, warn) {
        // React Server Components' "use client" markers mean nothing in a client-only bundle.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      // Every ExecutionService method is POSTed under its service path.
      "/rgrid.v1.ExecutionService": {
        target: apiUrl,
        changeOrigin: true,
        // The service honours session cookies only from its own origin.
        configure: (proxy) => {
          proxy.on("proxyReq", (request) => request.setHeader("origin", apiUrl));
        },
      },
    },
  },
});
