"""test_local_first.py - the shipped example config/examples/local-first.json,
run as it is but for the API's address (a mock): the local model serves what
it can (JSON-schema answers included), and what it cannot (tools, a schema
keyword it cannot constrain to) goes to the API with
x-llmpin-fallback: unsupported, without the local model being asked."""
import json
import os

from e2e_common import H, E2ETestCase, REPO, main

EXAMPLE = os.path.join(REPO, "config", "examples", "local-first.json")


def load_example(path, api_base):
    with open(path, encoding="utf-8") as f:
        doc = json.loads("\n".join(l for l in f.read().splitlines() if not l.lstrip().startswith("//")))
    for m in doc["local_models"].values():
        m["path"] = os.path.normpath(os.path.join(os.path.dirname(path), m["path"]))
    doc["server"]["listen"] = "127.0.0.1:0"
    doc["upstreams"]["openai"]["base_url"] = api_base
    return doc


class LocalFirstExampleTest(E2ETestCase):
    def test_local_serves_and_the_api_takes_what_it_cannot(self):
        api = self.mock()
        p = self.llmpin(config=dict(load_example(EXAMPLE, api.base_url), drift={"db_path": self.db}),
                        env={"OPENAI_API_KEY": "sk-test"})
        st, h, d, raw = self.chat(p, "gpt-4o-mini", max_tokens=4)
        self.assertEqual(st, 200, raw)
        self.assertEqual(h.get("x-llmpin-target"), "local:stories")
        self.assertIsNone(h.get("x-llmpin-fallback"))
        self.assertEqual(api.stats()["requests"], 0)
        # a JSON schema it can constrain to is answered locally, and valid
        schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1, "maximum": 9}},
                  "required": ["n"], "additionalProperties": False}
        st, h, d, raw = self.chat(p, "gpt-4o-mini", max_tokens=40, seed=1,
                                  response_format={"type": "json_schema",
                                                   "json_schema": {"name": "n", "schema": schema}})
        self.assertEqual(st, 200, raw)
        self.assertEqual(h.get("x-llmpin-target"), "local:stories")
        self.assertEqual(d["choices"][0]["finish_reason"], "stop", raw)
        n = json.loads(d["choices"][0]["message"]["content"])["n"]
        self.assertTrue(isinstance(n, int) and 1 <= n <= 9, raw)
        self.assertEqual(api.stats()["requests"], 0)
        # tool calls too: the model is taught the generic form (it has no template)
        tool = {"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]}}}
        st, h, d, raw = self.chat(p, "gpt-4o-mini", max_tokens=200, seed=2, tools=[tool], tool_choice="required")
        self.assertEqual(st, 200, raw)
        self.assertEqual(h.get("x-llmpin-target"), "local:stories")
        ch = d["choices"][0]
        self.assertIn(ch["finish_reason"], ("tool_calls", "length"), raw)
        self.assertEqual([c["function"]["name"] for c in ch["message"]["tool_calls"]][:1], ["f"], raw)
        if ch["finish_reason"] == "tool_calls":
            self.assertIsInstance(json.loads(ch["message"]["tool_calls"][0]["function"]["arguments"])["k"], int)
        self.assertEqual(api.stats()["requests"], 0)
        strict = {"type": "function", "function": {"name": "g", "strict": True, "parameters": {
            "type": "object", "properties": {"s": {"type": "string", "minLength": 2}}}}}
        for n, extra in enumerate([{"tools": [tool], "response_format": {"type": "json_object"}},
                                   {"tools": [strict]},
                                   {"response_format": {"type": "json_schema",
                                                        "json_schema": {"name": "x", "schema": {
                                                            "type": "string", "minLength": 2}}}}], 1):
            st, h, d, raw = self.chat(p, "gpt-4o-mini", **extra)
            self.assertEqual(st, 200, raw)
            self.assertEqual(h.get("x-llmpin-target"), "openai")
            self.assertEqual(h.get("x-llmpin-fallback"), "unsupported")
            self.assertEqual(api.stats()["requests"], n)


if __name__ == "__main__":
    main()
