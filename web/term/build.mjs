// build.mjs copies the pinned xterm.js files (installed by `npm ci` from
// package-lock.json) into agent/webssh/assets/vendor, with their licences,
// byte for byte, and writes SHA256SUMS and VERSIONS so a reviewer can check
// the committed copies against the packages the lock file pins. Run it through ./rebuild.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "../../agent/webssh/assets/vendor");
const files = [
  ["@xterm/xterm/lib/xterm.js", "xterm.js"],
  ["@xterm/xterm/css/xterm.css", "xterm.css"],
  ["@xterm/xterm/LICENSE", "LICENSE.xterm"],
  ["@xterm/addon-fit/lib/addon-fit.js", "addon-fit.js"],
  ["@xterm/addon-fit/LICENSE", "LICENSE.addon-fit"],
  ["@xterm/addon-webgl/lib/addon-webgl.js", "addon-webgl.js"],
  ["@xterm/addon-webgl/LICENSE", "LICENSE.addon-webgl"],
];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const sums = [];
const versions = [];
for (const [from, to] of files) {
  const src = join(here, "node_modules", from);
  copyFileSync(src, join(out, to));
  sums.push(createHash("sha256").update(readFileSync(join(out, to))).digest("hex") + "  " + to);
}
for (const pkg of ["@xterm/xterm", "@xterm/addon-fit", "@xterm/addon-webgl"]) {
  const p = JSON.parse(readFileSync(join(here, "node_modules", pkg, "package.json"), "utf8"));
  versions.push(`${pkg} ${p.version}`);
}
writeFileSync(join(out, "SHA256SUMS"), sums.join("\n") + "\n");
writeFileSync(join(out, "VERSIONS"), versions.join("\n") + "\n");
console.log(`wrote ${files.length} files to ${out}:\n  ${versions.join("\n  ")}`);
