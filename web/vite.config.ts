/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` serves the app with hot reload and sends the BFF's calls to a running
// `chime serve` (CHIME_URL, default http://127.0.0.1:8080), so the session cookie is first-party.
const target = process.env.CHIME_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      '/bff': { target, changeOrigin: false },
    },
  },
  build: {
    target: 'es2022',
    sourcemap: true,
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
    // A deadline for a hang, not a speed check: beside the Rust suite's cluster and load tests
    // on a 2-core CI machine, a test that renders and waits can take seconds. Above the
    // 10 s `asyncUtilTimeout` (test-setup.ts), so a slow `findBy` fails with its own message.
    testTimeout: 30_000,
  },
});
