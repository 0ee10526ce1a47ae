import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

// A domain meets another only through plugins/<domain>/public.ts (ARCHITECTURE.md); the
// kernel registers the domains (src/app.ts imports their index.ts) and uses nothing else of them.
const domains = readdirSync(join(import.meta.dirname, 'plugins'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name)
const only = (regex) => ({
  'no-restricted-imports': ['error', { patterns: [{ regex, message: 'Another domain is reached only through its plugins/<domain>/public.ts.' }] }],
})
const domainBoundaries = [
  ...domains.map((domain) => ({
    files: [`plugins/${domain}/**`],
    rules: only(`^(\\.\\./)+(plugins/)?(${domains.filter((d) => d !== domain).join('|') || '$^'})/(?!public\\.ts$)`),
  })),
  { files: ['src/**', 'openapi/**', 'db/**', 'scripts/**'], ignores: ['src/app.ts'], rules: only('^(\\.\\./)+plugins/[^/]+/(?!public\\.ts$)') },
  { files: ['src/app.ts'], rules: only('^(\\.\\./)+plugins/[^/]+/(?!(public|index)\\.ts$)') },
]

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'storage/', 'openapi/sdk/schema.ts', 'openapi/sdk/dist/', '.tap/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  {
    // Migrations are frozen in time: they must not depend on application types.
    files: ['db/migrations/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...domainBoundaries,
  {
    files: ['test/**', 'scripts/**', 'db/migrate.ts'],
    rules: { 'no-console': 'off' },
  },
)
