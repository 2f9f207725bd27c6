// The web UI build: `vite build web` (npm run build:web) writes web/dist, which the server
// serves at / (src/serve/routes/web.ts). Relative asset URLs keep it working behind a
// reverse proxy that mounts the server under a sub-path.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
});
