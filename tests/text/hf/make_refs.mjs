// Regenerates the reference token ids (<vocab>.out) from llama.cpp, as
// bundled in node-llama-cpp 3.21.1, for the vocabulary-only GGUF files that
// llmpin-hfvocab writes. Run once by a developer; the .out files are the
// stored test data (the test itself needs no llama.cpp).
//
//   npm i -E --ignore-scripts node-llama-cpp@3.21.1   (anywhere; NODE_PATH to it)
//   node make_refs.mjs VOCAB.gguf corpus.inp VOCAB.out
//
// Each line of the output: the ids of one string of corpus.inp, no BOS/EOS
// added, special tokens not parsed (llama_tokenize(..., false, false)).
import { getLlama } from "node-llama-cpp";
import fs from "node:fs";

const [model, inp, out] = process.argv.slice(2);
if (!out) {
    console.error("usage: node make_refs.mjs VOCAB.gguf corpus.inp VOCAB.out");
    process.exit(2);
}
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const m = await llama.loadModel({ modelPath: model, vocabOnly: true });
const SEP = "\n__ggml_vocab_test__\n";
const parts = fs.readFileSync(inp, "utf8").split(SEP);
parts.pop();
const lines = parts.map((s) => Array.from(m.tokenize(s, false)).join(" "));
fs.writeFileSync(out, lines.join("\n") + "\n");
await m.dispose();
await llama.dispose();
