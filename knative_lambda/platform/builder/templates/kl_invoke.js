// Call a built Node function once: node kl_invoke.js DIR ENTRY [EVENT_JSON] -> result JSON on stdout.
const path = require("path");
const [root, entry, raw] = process.argv.slice(2);
const mod = require(path.resolve(root, entry));
const fn = (mod && (mod.handle || mod.parse)) || (typeof mod === "function" ? mod : null);
if (!fn) { console.error(`${entry} exports neither handle nor parse`); process.exit(2); }
Promise.resolve(fn(raw ? JSON.parse(raw) : {}))
  .then((r) => { process.stdout.write(JSON.stringify(r === undefined ? null : r) + "\n"); })
  .catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
