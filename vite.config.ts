/**
 * Builds apps/web (the volunteer page at / and the dashboard at /dashboard) into
 * apps/web/dist, which `swarmgrad serve` serves with COOP/COEP and a CSP: every asset is a
 * same-origin file (no inline scripts, no CDN), so the built pages run under both. TF.js's
 * WebAssembly kernels are copied to /tfjs-wasm/, where the worker's wasm backend loads them;
 * the files of the top-level public/ are copied to the root as they are.
 *
 * `npx vite` serves the app for development and proxies the API and socket.io to a
 * coordinator on :8080 (`SWARMGRAD_URL` to change it).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

const coordinator = process.env.SWARMGRAD_URL ?? 'http://127.0.0.1:8080';

/** Serves (dev) and emits (build) @tensorflow/tfjs-backend-wasm's dist/*.wasm under /tfjs-wasm/. */
function tfjsWasm(): Plugin {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  const files = () => readdirSync(dir).filter((f) => f.endsWith('.wasm'));
  return {
    name: 'swarmgrad-tfjs-wasm',
    configureServer(server) {
      server.middlewares.use('/tfjs-wasm', (req, res, next) => {
        const name = (req.url ?? '').replace(/^\//, '').split('?')[0];
        if (!name || !files().includes(name)) return next();
        res.setHeader('Content-Type', 'application/wasm');
        res.end(readFileSync(join(dir, name)));
      });
    },
    generateBundle() {
      for (const name of files()) {
        this.emitFile({
          type: 'asset',
          fileName: `tfjs-wasm/${name}`,
          source: readFileSync(join(dir, name)),
        });
      }
    },
  };
}

/**
 * TF.js's threaded WASM backend starts its pthread workers from `factory.toString()`, so the
 * factory must not refer to anything outside itself. The Emscripten wrapper keeps `_scriptDir`
 * in a closure, which the minifier renames (the workers then die with "e is not defined"):
 * make it a global the workers' copy can read (it is only ever a script URL or undefined).
 */
function tfjsThreadedWasm(): Plugin {
  return {
    name: 'swarmgrad-tfjs-threaded-wasm',
    transform(code, id) {
      if (!id.includes('tfjs-backend-wasm-threaded-simd.js')) return null;
      const declaration = 'var _scriptDir = ';
      if (!code.includes(declaration))
        this.error('tfjs-backend-wasm changed: no `var _scriptDir` to hoist out of its factory');
      return { code: code.replace(declaration, 'globalThis._scriptDir = '), map: null };
    },
  };
}

export default defineConfig({
  root: 'apps/web',
  base: '/',
  // static files copied as they are (favicon.svg): the top-level public/, not apps/web/public
  publicDir: fileURLToPath(new URL('./public', import.meta.url)),
  plugins: [react(), tfjsWasm(), tfjsThreadedWasm()],
  // the training thread (apps/web training-thread.ts) loads TF.js's wasm backend as the page does
  worker: { format: 'es', plugins: () => [tfjsThreadedWasm()] },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // the worker chunk (TF.js and its backends) loads only after Donate
    chunkSizeWarningLimit: 4096,
  },
  server: {
    proxy: {
      '/api': coordinator,
      '/data': coordinator,
      '/metrics': coordinator,
      '/socket.io': { target: coordinator, ws: true },
    },
  },
});
