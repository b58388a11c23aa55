import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["**/dist/**", "**/node_modules/**", "packages/proto/src/gen/**", "**/*.js", "**/*.mjs"] },
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { project: ["./tsconfig.test.json"], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": ["error", { checksVoidReturn: { arguments: false } }],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  {
    // MikroORM's flush and transactional run inside an AsyncLocalStorage, which on Node 20 turns
    // on promise hooks for the rest of the process's life (services/execution/src/db/orm-transaction.ts).
    files: ["services/execution/src/**/*.ts"],
    rules: {
      "no-restricted-properties": [
        "error",
        ...["flush", "persistAndFlush", "removeAndFlush", "transactional"].map((property) => ({
          property,
          message: "Write with native statements inside inOrmTransaction (db/orm-transaction.ts): a flush turns on promise hooks for good.",
        })),
      ],
    },
  },
  {
    // The browser console has its own compiler settings (DOM, JSX, bundler resolution).
    files: ["web/**/*.ts", "web/**/*.tsx"],
    languageOptions: {
      parserOptions: { project: ["./web/tsconfig.json"], tsconfigRootDir: import.meta.dirname },
    },
  },
);
