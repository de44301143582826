#!/usr/bin/env python3
"""Writes corpus.inp: the strings the real-vocabulary tokenizer test feeds to
llmpin and to llama.cpp (format of ../shared/vocab: each string followed by
"\\n__ggml_vocab_test__\\n"). Deterministic: re-running gives the same file.

usage: python3 make_corpus.py > corpus.inp
"""
import random
import sys

rng = random.Random(20261206)
out = []

# whitespace runs and mixtures
for ws in [" ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", " \n", "\n ", "\t\t", " \t ", "\u00a0",
           "\u3000", "\u2003", "\n\n\n\n", " " * 17, "\t \n \r"]:
    out += [ws, "a" + ws + "b", ws + "Hello", "Hello" + ws, "x" + ws * 3 + "y"]
# numbers of every length, with separators
for n in range(1, 16):
    d = "".join(rng.choice("0123456789") for _ in range(n))
    out += [d, " " + d, "v" + d, d + "px", "-" + d + "." + d[:3]]
out += ["3,141,592", "1e-10", "0x1F2e", "2026-12-06T14:30:00Z", "$1,234.56", "100%", "½ ¾ ²³",
        "٣٤٥ ١٢", "१२३४", "一二三 123"]
# contractions and case
out += ["I'm", "you're", "we've", "they'll", "she'd", "it's", "IT'S", "DON'T", "o'clock",
        "rock'n'roll", "'s", "'", "''", "The QUICK Brown fOX", "camelCaseWord", "HTTPServer",
        "snake_case_name", "ALLCAPS", "iPhone", "McDonald's"]
# code
out += ["def f(x):\n    return x**2\n", "int main(void) { return 0; }",
        "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}",
        "const re = /^[a-z]+$/i;", "SELECT * FROM users WHERE id = 42;",
        "<div class=\"a\">&nbsp;</div>", "{\"key\": [1, 2.5, null, true]}",
        "    indented\n        more\n", "#include <stdio.h>", "a->b && c || !d",
        "x == y != z <= w >= v", "// comment\n/* block */", "print(f\"{x!r:>10}\")",
        "std::vector<std::string> v;", "```python\nprint('hi')\n```", "  \t  mixed indent",
        "path/to/file.txt", "https://example.com/a?b=c&d=e#f", "user@example.org",
        "C:\\Windows\\System32"]
# scripts
out += ["Привет, мир!", "Съешь же ещё этих мягких французских булок",
        "مرحبا بالعالم", "السلام عليكم ورحمة الله", "שלום עולם", "नमस्ते दुनिया",
        "สวัสดีชาวโลก", "こんにちは世界", "カタカナとひらがな", "你好，世界！", "我想在apple工作1314151天～",
        "안녕하세요 세계", "Γειά σου Κόσμε", "Ελληνικά ΚΕΦΑΛΑΙΑ", "Ողջույն", "გამარჯობა",
        "Xin chào thế giới", "Zażółć gęślą jaźń", "Ünïcödé àççéñts", "ﬁ ﬂ ligatures",
        "Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ", "ℌ𝔢𝔩𝔩𝔬 𝕎𝕠𝕣𝕝𝕕", "e\u0301 vs \u00e9", "a\u0308\u0301",
        "ᏣᎳᎩ", "ⰀⰁ", "ᜀᜁ", "ꯀꯁ"]
# emoji and symbols
out += ["🦙", "🦙.cpp", "👍🏽", "👨‍👩‍👧‍👦", "🇫🇷🇩🇪", "❤️", "☃ ☂ ☎", "→ ← ↑ ↓",
        "∑∫√∞≠≈", "©®™", "• bullet", "…", "——", "«quotes»", "„German“", "「括弧」", "【tag】",
        "😀😃😄😁", "🙂 🙃", "⌘⌥⇧"]
# special-token look-alikes (never parsed as special in this test)
out += ["<|im_start|>", "<|im_end|>", "<|eot_id|>", "<|begin_of_text|>", "<s>", "</s>",
        "<start_of_turn>user", "<end_of_turn>", "<|endoftext|>", "[INST]", "<<SYS>>",
        "< |im_end| >", "<|im_end", "im_end|>", "<|fake_token|>", "<pad><eos>",
        "text<|im_end|>more", "<unk>", "<0x41>", "<mask>"]
# punctuation runs
out += ["!!!", "???", "...", "?!", ",,,", ";;", "::", "---", "___", "***", "((()))", "[]{}",
        "\"\"", "``", "~~", "^^", "@@", "##", "$$", "%%", "&&", "||", "\\\\", "//", "<<>>",
        " .", " ,", " !", " ?", "a.b.c", "end.", "end. Next", "wait... what?!"]
# random mixtures
alphabet = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     \n\t.,;:!?'\"()[]{}"
            "-_+=*/\\<>@#$%^&|~`éüßøçñ中文字日本語한국어абвгдеёжΑΒΓαβγ🦙😀👍✓€£¥")
for i in range(120):
    n = rng.randint(1, 60)
    out.append("".join(rng.choice(alphabet) for _ in range(n)))
# long ones
out.append("The quick brown fox jumps over the lazy dog. " * 20)
out.append(" ".join(str(rng.randint(0, 10 ** rng.randint(1, 12))) for _ in range(80)))
out.append("\n".join("line %d:\t%s" % (i, "x" * i) for i in range(30)))
out.append(" " * 300 + "end")
out.append("a" * 500)

sys.stdout.write("".join(s + "\n__ggml_vocab_test__\n" for s in out))
