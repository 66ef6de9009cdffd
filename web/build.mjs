// Bundles the labelling page into web/dist/ (index.html, app.js, app.css) with esbuild: no CDN, no network at run time.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const here = (path) => fileURLToPath(new URL(path, import.meta.url));
const dist = here("dist/");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  entryPoints: { app: here("src/main.js") },
  bundle: true,
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  minify: true,
  outdir: dist,
  logLevel: "warning",
});
await copyFile(here("index.html"), here("dist/index.html"));
