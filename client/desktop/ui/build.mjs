// Builds the window into dist/: our sources, the ES modules of the three npm packages we
// use (no bundler: the files are served as they are, through an import map), and the
// Fluent catalogs shared with the rest of the client (client/locales). Refuses to build
// when a catalog lacks a message the other has, or the app uses a message neither has.
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
const locales = join(here, "..", "..", "locales");
const mod = (p) => join(here, "node_modules", p);

for (const p of ["preact", "htm", "@fluent/bundle"]) {
  if (!existsSync(mod(p))) {
    console.error(`ui: ${p} is not installed; run \`npm ci\` in ${here}`);
    process.exit(1);
  }
}

// Message ids of a Fluent file (top-level `id = …` lines; `-terms` are private).
const ids = (text) =>
  new Set(
    text
      .split("\n")
      .map((l) => /^([a-z][a-z0-9-]*)\s*=/.exec(l))
      .filter(Boolean)
      .map((m) => m[1]),
  );
const catalogs = Object.fromEntries(
  ["pl", "en"].map((lang) => [lang, readFileSync(join(locales, `${lang}.ftl`), "utf8")]),
);
const [pl, en] = [ids(catalogs.pl), ids(catalogs.en)];
const problems = [];
for (const id of pl) if (!en.has(id)) problems.push(`en.ftl lacks ${id}`);
for (const id of en) if (!pl.has(id)) problems.push(`pl.ftl lacks ${id}`);
for (const file of readdirSync(join(here, "src")).filter((f) => f.endsWith(".js"))) {
  const code = readFileSync(join(here, "src", file), "utf8");
  // `t("tab-" + k)` names a family: at least one message must start with it.
  for (const m of code.matchAll(/\bt\("([a-z][a-z0-9-]*)"/g)) {
    const id = m[1];
    const known = id.endsWith("-") ? [...pl].some((k) => k.startsWith(id)) : pl.has(id);
    if (!known) problems.push(`${file} uses ${id}, which the catalogs lack`);
  }
}
if (problems.length) {
  console.error("ui: the catalogs are not complete:\n  " + problems.join("\n  "));
  process.exit(1);
}

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor", "fluent"), { recursive: true });
mkdirSync(join(dist, "locales"), { recursive: true });
cpSync(join(here, "src"), dist, { recursive: true });
cpSync(mod("preact/dist/preact.module.js"), join(dist, "vendor", "preact.module.js"));
// The hooks import "preact" by its bare name; without a bundler or an import map (an
// inline script the content security policy would have to allow) it is pointed at the file.
const hooks = readFileSync(mod("preact/hooks/dist/hooks.module.js"), "utf8");
if (!hooks.includes('from"preact"')) {
  console.error("ui: preact/hooks no longer imports \"preact\" as expected; update build.mjs");
  process.exit(1);
}
writeFileSync(join(dist, "vendor", "hooks.module.js"), hooks.replace('from"preact"', 'from"./preact.module.js"'));
cpSync(mod("htm/dist/htm.module.js"), join(dist, "vendor", "htm.module.js"));
for (const f of readdirSync(mod("@fluent/bundle/esm"))) {
  if (f.endsWith(".js")) cpSync(mod(`@fluent/bundle/esm/${f}`), join(dist, "vendor", "fluent", f));
}
for (const lang of ["pl", "en"]) writeFileSync(join(dist, "locales", `${lang}.ftl`), catalogs[lang]);
console.log(`ui: built ${dist} (${pl.size} messages in pl and en)`);
