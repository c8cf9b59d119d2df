// Build of the dashboard: hashed assets under assets/, a .gz sibling for every text asset so the
// gateway can serve precompressed files, and a dev proxy to a running ledgerd.
import { defineConfig, type Plugin } from "vite";
import preact from "@preact/preset-vite";
import { gzipSync, constants } from "node:zlib";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const COMPRESSIBLE = /\.(js|css|html|svg)$/;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Writes `<file>.gz` (level 9) next to each js/css/html/svg file of the build output. */
function precompress(): Plugin {
  let outDir = "dist";
  return {
    name: "ledger-precompress",
    apply: "build",
    configResolved(config) {
      outDir = config.build.outDir;
    },
    closeBundle() {
      for (const file of walk(outDir)) {
        if (!COMPRESSIBLE.test(file)) continue;
        const gz = gzipSync(readFileSync(file), { level: constants.Z_BEST_COMPRESSION });
        writeFileSync(`${file}.gz`, gz);
      }
    },
  };
}

export default defineConfig({
  plugins: [preact(), precompress()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    target: "es2020",
    sourcemap: false,
    // No inline data: URLs for assets: the CSP allows img-src data: but keep files cacheable.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: {
    proxy: {
      "/api": {
        target: process.env.LEDGER_URL ?? "http://127.0.0.1:8020",
        changeOrigin: true,
      },
    },
  },
});
