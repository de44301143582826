"""test_local.py - the pinned local model served over HTTP, end to end.

The engine's own tests check tokens against llama.cpp's reference; these
check what an application sees through llmpin's endpoints: the same greedy
text, streaming with usage, embeddings, /v1/models with the pinned hash,
clear errors for what a local model cannot do, and a refused file whose
hash differs."""
import json
import math
import os

from e2e_common import H, E2ETestCase, STORIES, STORIES_SHA, MODELS, main, stories

REF = os.path.join(MODELS, "reference", "stories260K_greedy_once_upon_a_time.json")


class LocalModelTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        cfg = {"server": {"listen": "127.0.0.1:0"}, "local_models": {"stories": stories()},
               "drift": {"db_path": self.db}}
        self.p = self.llmpin(config=cfg)

    def post(self, path, body):
        return H.post_json(self.p.addr, path, body)

    def test_greedy_completion_matches_reference_text(self):
        ref = json.load(open(REF))
        st, h, d, raw = self.post("/v1/completions", {"model": "stories", "prompt": "Once upon a time",
                                                      "temperature": 0, "max_tokens": 64})
        self.assertEqual(st, 200, raw)
        self.assertEqual(d["choices"][0]["text"], ref["generated_text"])
        self.assertEqual(d["choices"][0]["finish_reason"], "length")
        self.assertEqual(d["usage"], {"prompt_tokens": 5, "completion_tokens": 64, "total_tokens": 69})
        self.assertEqual(h.get("x-llmpin-target"), "local:stories")
        self.assertEqual(d["system_fingerprint"], "llmpin-" + STORIES_SHA[:12])

    def test_stream_with_usage_and_stop(self):
        s = H.SSE(self.p.addr, "/v1/completions",
                  {"model": "stories", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 64,
                   "stop": ["Lily"], "stream": True, "stream_options": {"include_usage": True}})
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        payloads = s.read_all()
        self.assertEqual(payloads[-1], "[DONE]")
        chunks = H.json_events(payloads)
        text = "".join(c["choices"][0]["text"] for c in chunks if c["choices"])
        self.assertEqual(text, ", there was a little girl named ")  # cut before the stop string
        self.assertEqual(chunks[-1]["choices"], [])
        self.assertEqual(chunks[-1]["usage"]["prompt_tokens"], 5)
        finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
        self.assertEqual(finish[-1], "stop")

    def test_embeddings_are_unit_length(self):
        st, h, d, raw = self.post("/v1/embeddings", {"model": "stories", "input": ["a cat", "a dog"]})
        self.assertEqual(st, 200, raw)
        self.assertEqual(len(d["data"]), 2)
        for i, e in enumerate(d["data"]):
            self.assertEqual(e["index"], i)
            self.assertEqual(len(e["embedding"]), 64)
            self.assertAlmostEqual(math.sqrt(sum(x * x for x in e["embedding"])), 1.0, places=4)
        self.assertNotEqual(d["data"][0]["embedding"], d["data"][1]["embedding"])

    def test_models_lists_the_pinned_hash(self):
        st, h, raw = H.request(self.p.addr, "GET", "/v1/models")
        self.assertEqual(st, 200)
        models = {m["id"]: m for m in json.loads(raw)["data"]}
        self.assertEqual(models["stories"]["sha256"], STORIES_SHA)
        self.assertEqual(models["stories"]["owned_by"], "llmpin-local")

    def chat_lp(self, **extra):
        body = {"model": "stories", "messages": [{"role": "user", "content": "Once upon a time"}],
                "max_tokens": 12, "temperature": 0, "logprobs": True, "top_logprobs": 20}
        body.update(extra)
        st, h, d, raw = self.post("/v1/chat/completions", body)
        self.assertEqual(st, 200, raw)
        return d["choices"][0]

    def test_logprobs_come_from_the_model_distribution(self):
        ch = self.chat_lp()
        content = ch["logprobs"]["content"]
        self.assertEqual(len(content), 12)
        self.assertEqual("".join(bytes(e["bytes"]).decode("utf-8", "replace") for e in content),
                         ch["message"]["content"])
        for e in content:
            tops = e["top_logprobs"]
            self.assertEqual(len(tops), 20)
            # greedy picks the most likely token; the list is sorted; a distribution's share
            self.assertEqual(tops[0]["token"], e["token"])
            self.assertEqual(tops[0]["logprob"], e["logprob"])
            self.assertEqual([t["logprob"] for t in tops], sorted((t["logprob"] for t in tops), reverse=True))
            self.assertTrue(all(t["logprob"] <= 0 for t in tops))
            self.assertLessEqual(sum(math.exp(t["logprob"]) for t in tops), 1.0 + 1e-5)
        # the model's distribution, not the sampler's: temperature does not change the first step
        hot = self.chat_lp(temperature=1.7, seed=3)
        self.assertEqual(hot["logprobs"]["content"][0]["top_logprobs"], content[0]["top_logprobs"])
        # streamed: the same entries, spread over the chunks that carry their text
        s = H.SSE(self.p.addr, "/v1/chat/completions",
                  {"model": "stories", "messages": [{"role": "user", "content": "Once upon a time"}],
                   "max_tokens": 12, "temperature": 0, "logprobs": True, "top_logprobs": 20, "stream": True})
        self.addCleanup(s.close)
        chunks = H.json_events(s.read_all())
        streamed = [e for c in chunks if c["choices"] and c["choices"][0]["logprobs"]
                    for e in c["choices"][0]["logprobs"]["content"]]
        self.assertEqual(streamed, content)
        # refused as OpenAI refuses them
        for extra, param in (({"top_logprobs": 21}, "top_logprobs"), ({"logprobs": False, "top_logprobs": 2},
                                                                       "top_logprobs"), ({"logprobs": "yes"}, "logprobs")):
            body = {"model": "stories", "messages": [{"role": "user", "content": "hi"}]}
            body.update(extra)
            st, h, d, raw = self.post("/v1/chat/completions", body)
            self.assertError(st, d, 400, param=param)

    def test_n_choices(self):
        # n choices, each its own sample (seed + i): greedy ones agree, sampled ones differ; usage sums them
        body = {"model": "stories", "messages": [{"role": "user", "content": "Once upon a time"}], "max_tokens": 8}
        st, h, d, raw = self.post("/v1/chat/completions", dict(body, n=3, temperature=0))
        self.assertEqual(st, 200, raw)
        self.assertEqual([c["index"] for c in d["choices"]], [0, 1, 2])
        self.assertEqual(len({c["message"]["content"] for c in d["choices"]}), 1)
        self.assertEqual(d["usage"]["completion_tokens"], 24)
        st, h, d, raw = self.post("/v1/chat/completions", dict(body, n=4, seed=5, max_tokens=16))
        self.assertGreater(len({c["message"]["content"] for c in d["choices"]}), 1, raw)
        st, h, one, raw = self.post("/v1/chat/completions", dict(body, seed=5, max_tokens=16))
        self.assertEqual(one["choices"][0]["message"]["content"], d["choices"][0]["message"]["content"])
        s = H.SSE(self.p.addr, "/v1/chat/completions", dict(body, n=4, seed=5, max_tokens=16, stream=True,
                                                           stream_options={"include_usage": True}))
        self.addCleanup(s.close)
        chunks = H.json_events(s.read_all())
        texts, finish = ["", "", "", ""], [None] * 4
        for c in chunks:
            for ch in c["choices"]:
                texts[ch["index"]] += ch["delta"].get("content") or ""
                finish[ch["index"]] = ch["finish_reason"] or finish[ch["index"]]
        self.assertEqual(texts, [c["message"]["content"] for c in d["choices"]])
        self.assertEqual(finish, [c["finish_reason"] for c in d["choices"]])
        self.assertEqual(chunks[-1]["usage"], d["usage"])
        st, h, d, raw = self.post("/v1/chat/completions", dict(body, n=129))
        self.assertError(st, d, 400, param="n")

    def test_logit_bias(self):
        # +100 on a token forces it; -100 on all but two leaves only those two
        t400 = self.chat_lp(logit_bias={"400": 100}, max_tokens=4)["logprobs"]["content"]
        t401 = self.chat_lp(logit_bias={"401": 100}, max_tokens=4)["logprobs"]["content"]
        self.assertEqual(len({e["token"] for e in t400}), 1)
        self.assertEqual(len({e["token"] for e in t401}), 1)
        self.assertNotEqual(t400[0]["token"], t401[0]["token"])
        ban = {str(i): -100 for i in range(512) if i not in (400, 401)}
        left = self.chat_lp(logit_bias=ban, temperature=1, seed=7, max_tokens=16)["logprobs"]["content"]
        self.assertEqual(len(left), 16)
        self.assertTrue({e["token"] for e in left} <= {t400[0]["token"], t401[0]["token"]}, left)
        for bias, words in (({"abc": 1}, "Invalid key"), ({"99999": 1}, "not a token id"), ({"5": 101}, "-100 to 100"),
                            ([1], "must be an object"), ({str(i): 1 for i in range(1025)}, "at most 1024")):
            st, h, d, raw = self.post("/v1/chat/completions", {"model": "stories", "logit_bias": bias,
                                                               "messages": [{"role": "user", "content": "hi"}]})
            self.assertIn(words, self.assertError(st, d, 400, param="logit_bias")["message"])

    def test_what_a_local_model_cannot_do_is_refused(self):
        # what the model lacks is a 503 (no target of the route can serve
        # it; another model could), naming the parameter; a prompt over the
        # only model's context is the request's fault, a 400 as OpenAI's
        cases = [({"functions": [{"name": "f"}]}, 503, "functions",
                  "'functions' (deprecated by OpenAI) is not supported by the local model 'stories'; use 'tools' "
                  "and 'tool_choice'"),
                 ({"messages": [{"role": "user", "content": "word " * 700}]}, 400, "messages", None)]
        for extra, status, param, msg in cases:
            body = {"model": "stories", "messages": [{"role": "user", "content": "hi"}]}
            body.update(extra)
            st, h, d, raw = self.post("/v1/chat/completions", body)
            err = self.assertError(st, d, status, code="no_capable_target" if status == 503
                                   else "context_length_exceeded", param=param)
            if msg:
                self.assertEqual(err["message"], "No target of route 'stories' can serve this request: "
                                 "local:stories: %s." % msg)

    def test_prompt_over_the_context_is_refused_without_tokenizing_on_the_loop(self):
        # 7 MB cannot fit 512 tokens whatever its tokens: refused at once;
        # a prompt that might fit is tokenized by the scheduler thread, which
        # refuses it with the same 400 (context_length_exceeded)
        huge = "word " * 1400000
        for path, body, param in [
                ("/v1/chat/completions", {"messages": [{"role": "user", "content": huge}]}, "messages"),
                ("/v1/completions", {"prompt": huge}, "prompt"),
                ("/v1/embeddings", {"input": huge}, "input"),
                ("/v1/embeddings", {"input": ["short", huge]}, "input")]:  # refused at its turn
            body = dict(body, model="stories")
            st, h, d, raw = self.post(path, body)
            self.assertError(st, d, 400, code="context_length_exceeded", param=param)
            self.assertRegex(d["error"]["message"],
                             r"^prompt is at least \d{6} tokens \(70000\d\d bytes\); context_length is 512$")
        for path, body, param in [
                ("/v1/completions", {"prompt": "word " * 700}, "prompt"),
                ("/v1/embeddings", {"input": ["short", "word " * 700]}, "input")]:
            body = dict(body, model="stories")
            st, h, d, raw = self.post(path, body)
            self.assertError(st, d, 400, code="context_length_exceeded", param=param)
            self.assertRegex(d["error"]["message"], r"prompt is \d+ tokens; context_length is \d+")
        st, h, d, raw = self.post("/v1/completions", {"model": "stories", "prompt": "Once", "max_tokens": 2})
        self.assertEqual(st, 200, raw)

    def test_disconnect_mid_stream_then_serves_again(self):
        s = H.SSE(self.p.addr, "/v1/completions", {"model": "stories", "prompt": "Once", "max_tokens": 400,
                                                   "stream": True})
        self.assertEqual(s.status, 200)
        s.next_event()
        s.close()
        st, h, d, raw = self.post("/v1/completions", {"model": "stories", "prompt": "Once upon a time",
                                                      "temperature": 0, "max_tokens": 8})
        self.assertEqual(st, 200, raw)


class PinTest(E2ETestCase):
    def test_a_different_hash_is_refused_with_both_hashes(self):
        bad = "0" * 64
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "local_models": {"stories": {"path": STORIES, "sha256": bad}}}
        path = self.path("cfg.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        import subprocess
        r = subprocess.run([H.ARGS.llmpin, "serve", "--config", path, "--no-drift"], capture_output=True,
                           timeout=60)
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr.decode()
        self.assertIn("SHA-256 mismatch", err)
        self.assertIn(bad, err)
        self.assertIn(STORIES_SHA, err)


if __name__ == "__main__":
    main()
