import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  // Relative asset URLs: the build works wherever it is served from (template_port's root, or a
  // template_base / custom_base_url path).
  base: './',
  resolve: {
    // One React and one livekit-client in the bundle. The root node_modules holds a React 18 (tap's
    // reporter needs it) that the hoisted @livekit/components-react would otherwise import beside
    // ours (React error #130), and @livekit/egress-sdk, CommonJS, would `require` livekit-client's
    // UMD build beside the ESM one.
    dedupe: ['react', 'react-dom'],
    alias: [{ find: /^livekit-client$/, replacement: fileURLToPath(import.meta.resolve('livekit-client')) }],
  },
  // `npm run dev -w templates`: loopback only, like everything else the egress serves
  server: { host: '127.0.0.1' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    reportCompressedSize: false,
    // one bundle, read once per egress from loopback: its size is not a download concern
    chunkSizeWarningLimit: 2048,
  },
});
