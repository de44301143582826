// template_bench.mjs - the same measurement as template_bench.c with
// @huggingface/jinja (the JavaScript Jinja transformers.js uses), for the
// side-by-side figure in bench/template/README.md.
//
// usage: node template_bench.mjs JINJA_MODULE_DIR tokenizer_config.json conv.json ROUNDS [OUT]
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [dir, cfgPath, convPath, roundsArg, outPath] = process.argv.slice(2);
const { Template } = await import(pathToFileURL(path.join(dir, "dist", "index.js")).href);
const cfg = JSON.parse(fs.readFileSync(cfgPath, "utf8"));
const conv = JSON.parse(fs.readFileSync(convPath, "utf8"));
const tokText = (t) => (t == null ? "" : typeof t === "string" ? t : t.content ?? "");
const rounds = Number(roundsArg) || 2000;
const ctx = { ...conv, add_generation_prompt: true, bos_token: tokText(cfg.bos_token),
              eos_token: tokText(cfg.eos_token) };

let t0 = process.hrtime.bigint();
const tmpl = new Template(cfg.chat_template);
const parseUs = Number(process.hrtime.bigint() - t0) / 1e3;
const us = [];
let out = "";
for (let r = 0; r < rounds; r++) {
    t0 = process.hrtime.bigint();
    out = tmpl.render(ctx);
    us.push(Number(process.hrtime.bigint() - t0) / 1e3);
}
us.sort((a, b) => a - b);
const f = (x) => x.toFixed(1).padStart(8);
console.log(`hf/jinja parse ${f(parseUs)} us  render median ${f(us[rounds >> 1])} us  best ${f(us[0])} us  ` +
            `(${Buffer.byteLength(out)} bytes of prompt)`);
if (outPath) fs.writeFileSync(outPath, out);
