"""test_structured.py - constrained decoding on the local model, end to end.

What an application relying on response_format sees through
/v1/chat/completions, on two models a grammar finds hard: stories260K (a
tiny trained Llama that writes English prose) and llama-2-tiny-random (the
real 32000-token Llama 2 vocabulary with random weights, whose next token is
close to uniform):

- json_schema: many random schemas of the supported subset (a seeded
  generator below), each answered at temperature 1 with its own seed. Every
  answer that finishes with "stop" is a JSON text (strict: no NaN, no
  duplicate keys) that validates against its schema, formats included; an
  answer cut by max_tokens ("length") is a non-empty start of an object. Most
  answers must finish ("stop"); the ratio is printed.
- json_object: an answer that finishes is a JSON object; without the word
  "JSON" in the messages the request is a 400 naming 'messages', as OpenAI's.
- streaming: the deltas concatenate to a valid document, and the same seed
  gives the same text as the non-streamed answer.
- refusals: what the grammar cannot constrain to (minLength, not, oneOf,
  uniqueItems, patternProperties, a missing $ref, contradicting bounds, a
  recursion without base case, 70 levels of nesting, a backreference) is a
  400 naming 'response_format' and the keyword, never ignored; so are a
  json_schema without name and an unknown type.
- a control: the same requests without response_format are not valid JSON,
  so the checks above fail when the constraint is not applied.

Needs the jsonschema module (Debian python3-jsonschema, scripts/deps.sh).
The number of requests scales with LLMPIN_TEST_SCALE (default 1, or 0.15
when the llmpin binary is an ASan build) and is cut by a time budget
(LLMPIN_STRUCTURED_BUDGET seconds, default 25) once a minimum is reached.
LLMPIN_STRUCTURED_SEED changes the schemas (default fixed); a failure
prints the schema, the seed and the content to reproduce it."""
import calendar
import functools
import http.client
import json
import os
import random
import re
import sys
import threading
import time

from e2e_common import H, E2ETestCase, MODELS, main, stories

try:
    import jsonschema
except ImportError:  # pragma: no cover - a missing dependency, said plainly
    sys.exit("test_structured.py needs the jsonschema module: apt-get install python3-jsonschema "
             "(scripts/deps.sh installs it)")

RANDOM_LLAMA2 = os.path.join(MODELS, "llama-2-tiny-random.gguf")
RANDOM_LLAMA2_SHA = "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb"

MODEL_NAMES = ("stories", "random")
CONCURRENCY = 8          # per model: the engine decodes up to max_batch sequences together
MAX_TOKENS = 400
# Shares of the answers that must finish ("stop") within MAX_TOKENS. A weak
# model inside a free string may write until the limit; well below these
# means the grammar steers badly (or never lets the document end).
MIN_STOP_RATIO = {"stories": 0.80, "random": 0.60}
MIN_JSON_OBJECT_STOP_RATIO = 0.5

PROMPTS = ["Answer with a JSON document.", "Give me the data as JSON, please.",
           "Reply in json only.", "Tell me about a cat."]  # json_schema does not need the word


def random_llama2():
    """local_models entry for the random-weight model with the Llama 2 vocabulary."""
    return {"path": RANDOM_LLAMA2, "sha256": RANDOM_LLAMA2_SHA, "threads": 1,
            "chat_template": "llama2", "context_length": 1024, "max_batch": CONCURRENCY}


@functools.lru_cache(maxsize=None)
def scale():
    v = os.environ.get("LLMPIN_TEST_SCALE")
    if v:
        return float(v)
    try:
        with open(H.ARGS.llmpin, "rb") as f:
            return 0.15 if b"__asan_init" in f.read() else 1.0
    except OSError:
        return 1.0


# ---- validation ---------------------------------------------------------------------

V = jsonschema.Draft202012Validator


def _format_checker():
    """Draft 2020-12's format checker: its "time" is RFC 3339's full-time,
    with an offset (jsonschema.FormatChecker() would check draft 3's
    HH:MM:SS instead). Formats the installed jsonschema leaves unchecked
    (date-time and time need the optional rfc3339-validator) get a checker
    here, so a format is never silently skipped."""
    base = getattr(V, "FORMAT_CHECKER", None) or jsonschema.draft202012_format_checker
    fc = jsonschema.FormatChecker(())
    fc.checkers.update(base.checkers)
    if "date-time" not in fc.checkers:
        fc.checks("date-time")(_is_rfc3339_date_time)
    if "time" not in fc.checkers:
        fc.checks("time")(lambda s: not isinstance(s, str) or _is_rfc3339_date_time("1970-01-01T" + s))
    for name in FORMATS:
        assert name in fc.checkers, "format %r has no checker" % name
    return fc


_RFC3339 = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])-(\d{2})T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?"
                      r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$", re.ASCII)


def _is_rfc3339_date_time(s):
    """As rfc3339_validator (what jsonschema uses when it is installed)."""
    if not isinstance(s, str):
        return True
    m = _RFC3339.match(s.upper())
    if not m:
        return False
    year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    return year > 0 and 1 <= day <= calendar.monthrange(year, month)[1]


def strict_loads(text):
    """json.loads without what JSON does not have (NaN, Infinity) and
    refusing duplicate keys, which json.loads would silently merge."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate key in %r" % keys)
        return dict(kv)

    def constant(name):
        raise ValueError("%s is not JSON" % name)
    return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)


def schema_error(doc, schema):
    """None, or the first validation error of doc against schema."""
    e = jsonschema.exceptions.best_match(V(schema, format_checker=FORMAT_CHECKER).iter_errors(doc))
    if e is None:
        return None
    return "%s at %s" % (e.message, "/".join(str(p) for p in e.absolute_path) or "the root")


# ---- a random schema generator ------------------------------------------------------

NAMES = ["id", "name", "age", "city", "tags", "score", "active", "kind", "note", "when", "code",
         "email", "host", "level", "items", "owner", "meta", "x", "y", "label", "count", "ok"]
STRING_ENUMS = [["red", "green", "blue"], ["a", "ab", "abc"], ["yes", "no", "maybe"],
                ["New York", "say \"hi\"", "back\\slash"], ["na\u00efve", "\u65e5\u672c", "\U0001f642 smile"],
                ["", "x"], ["line\nbreak", "tab\there"]]
CONSTS = ["v1", "fixed", "", "quote \" and \\ backslash"]
MIXED_ENUMS = [[1, "one", True, None], [0, -1, 2.5, "x"], [None, False, "no"], ["a", 10, 100], [-7, 3, "3"]]
PATTERNS = [r"^[a-z]{2,5}$", r"^\d{3}-\d{4}$", r"^(yes|no)$", "ab", r"^[A-Z][a-z]{0,8}$", r"^-?[0-9]{1,6}$",
            r"^x+y?$"]
FORMATS = ["date", "date-time", "time", "uuid", "email", "ipv4"]
TYPE_LISTS = [["string", "null"], ["integer", "null"], ["number", "null"], ["boolean", "string"],
              ["integer", "boolean", "null"]]


class SchemaGen:
    """Random schemas from the supported subset, deterministic from a seed:
    objects (properties in order, all or some required,
    additionalProperties false) nested up to 3 levels; free, enum, const,
    pattern and format strings; bounded and unbounded integers (negative and
    exclusive bounds too) and numbers; booleans; null; type lists; arrays
    with 0..4 item bounds; anyOf of 2-3; mixed enums; $defs with $ref, and
    recursive ones with a base case (a tree, a linked list). schema()
    returns (schema, features): features name what it uses, for the report."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    def schema(self):
        r = self.r
        self.features = set()
        self.defs = {}
        self.plain_defs = []
        x = r.random()
        if x < 0.10:
            s = {"$ref": "#/$defs/" + self.recursive_def()}
            self.features.add("root $ref")
        else:
            if x < 0.30:
                for _ in range(r.randint(1, 2)):
                    name = "def%d" % len(self.defs)
                    self.defs[name] = self.obj(2) if r.random() < 0.5 else self.value(3)
                    self.plain_defs.append(name)
                if r.random() < 0.4:
                    self.recursive_def()
            s = self.obj(1)
            for name in self.defs:  # every def is used, even if value() did not pick it
                if not any(v == {"$ref": "#/$defs/" + name} for v in s["properties"].values()):
                    s["properties"]["r_" + name] = {"$ref": "#/$defs/" + name}
                    if r.random() < 0.7:
                        s["required"].append("r_" + name)
        if self.defs:
            s["$defs"] = self.defs
        if r.random() < 0.1:
            s["description"] = "an annotation, which constrains nothing"
        return s, sorted(self.features)

    def recursive_def(self):
        r = self.r
        if r.random() < 0.5:
            name = "node"
            self.features.add("recursive tree")
            children = {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}
            self.defs[name] = {"type": "object", "properties": {"value": self.scalar(), "children": children},
                               "required": ["value", "children"] if r.random() < 0.5 else ["value"],
                               "additionalProperties": False}
        else:
            name = "item"
            self.features.add("recursive list")
            self.defs[name] = {"type": "object",
                               "properties": {"v": {"type": "integer"},
                                              "next": {"anyOf": [{"$ref": "#/$defs/item"}, {"type": "null"}]}},
                               "required": ["v", "next"], "additionalProperties": False}
        return name

    def obj(self, depth):
        r = self.r
        n = r.randint(1, 5) if depth == 1 else r.randint(0, 3)
        names = r.sample(NAMES, n)
        props = {k: self.value(depth + 1) for k in names}
        if r.random() < 0.5:
            required = list(names)
        else:
            required = [k for k in names if r.random() < 0.5]
            self.features.add("optional properties")
        if depth > 1:
            self.features.add("object depth %d" % depth)
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    def value(self, depth):
        r = self.r
        kinds = {"string": 3, "enum": 3, "const": 1, "pattern": 3, "format": 3, "integer": 4, "number": 2,
                 "boolean": 2, "null": 1, "type list": 2, "mixed enum": 2}
        if depth <= 3:
            kinds.update({"object": 3, "array": 3, "anyOf": 2})
        if self.plain_defs:
            kinds["$ref"] = 3
        kind = r.choices(list(kinds), weights=list(kinds.values()))[0]
        self.features.add(kind)
        if kind == "object":
            return self.obj(depth)
        if kind == "array":
            s = {"type": "array", "items": self.value(depth + 1)}
            lo, hi = sorted(r.choice([(0, 4), (1, 3), (2, 2), (0, 0), (3, 4)]))
            c = r.randrange(4)
            if c in (1, 3):
                s["minItems"] = lo
            if c in (2, 3):
                s["maxItems"] = hi
            return s
        if kind == "anyOf":
            return {"anyOf": [self.value(depth + 1) for _ in range(r.randint(2, 3))]}
        if kind == "$ref":
            return {"$ref": "#/$defs/" + r.choice(self.plain_defs)}
        return self.scalar(kind)

    def scalar(self, kind=None):
        r = self.r
        kind = kind or r.choice(["string", "enum", "pattern", "format", "integer", "number", "boolean"])
        self.features.add(kind)
        if kind == "string":
            return {"type": "string"}
        if kind == "enum":
            return {"type": "string", "enum": r.choice(STRING_ENUMS)}
        if kind == "const":
            return {"type": "string", "const": r.choice(CONSTS)}
        if kind == "pattern":
            return {"type": "string", "pattern": r.choice(PATTERNS)}
        if kind == "format":
            f = r.choice(FORMATS)
            self.features.add("format " + f)
            return {"type": "string", "format": f}
        if kind == "integer":
            return self.integer()
        if kind == "number":
            return self.number()
        if kind == "boolean":
            return {"type": "boolean"}
        if kind == "null":
            return {"type": "null"}
        if kind == "type list":
            return {"type": list(r.choice(TYPE_LISTS))}
        assert kind == "mixed enum", kind
        return {"enum": list(r.choice(MIXED_ENUMS))}

    def integer(self):
        r = self.r
        s = {"type": "integer"}
        c = r.randrange(7)
        lo = r.randint(-60, 40)
        if c == 1:
            s["minimum"] = r.choice([-100, -5, 0, 1, 10, 1000])
        elif c == 2:
            s["maximum"] = r.choice([-3, 0, 9, 99, 100000])
        elif c == 3:
            s["minimum"], s["maximum"] = lo, lo + r.choice([0, 1, 5, 20, 300])
        elif c == 4:
            s["exclusiveMinimum"], s["exclusiveMaximum"] = lo, lo + r.choice([2, 3, 10, 101])
        elif c == 5:
            s["minimum"], s["exclusiveMaximum"] = lo, lo + r.choice([1, 2, 50])
        elif c == 6:
            s["exclusiveMinimum"] = lo
        if len(s) > 1:
            self.features.add("integer bounds")
        return s

    def number(self):
        r = self.r
        s = {"type": "number"}
        c = r.randrange(5)
        if c == 1:
            s["minimum"] = 0
        elif c == 2:
            s["minimum"], s["maximum"] = -10, 10
        elif c == 3:
            s["minimum"], s["maximum"] = 0, 1
        elif c == 4:
            s["maximum"] = -1
        if len(s) > 1:
            self.features.add("number bounds")
        return s


def master_seed():
    return int(os.environ.get("LLMPIN_STRUCTURED_SEED", "20240607"))


def make_schemas(n, seed):
    g = SchemaGen(seed)
    out = []
    for _ in range(n):
        s, feats = g.schema()
        V.check_schema(s)  # a generator bug, not llmpin's
        out.append((s, feats))
    return out


FORMAT_CHECKER = _format_checker()


# ---- requests ------------------------------------------------------------------------

def schema_body(model, schema, seed, name, strict=None, prompt=None, stream=False):
    js = {"name": name, "schema": schema}
    if strict is not None:
        js["strict"] = strict
    body = {"model": model, "messages": [{"role": "user", "content": prompt or PROMPTS[seed % len(PROMPTS)]}],
            "temperature": 1, "seed": seed, "max_tokens": MAX_TOKENS,
            "response_format": {"type": "json_schema", "json_schema": js}}
    if stream:
        body["stream"] = True
    return body


def judge(schema, content, finish):
    """None if the answer keeps the contract, else what is wrong."""
    if not isinstance(content, str) or not content:
        return "content is not a non-empty string"
    if finish == "length":
        # cut short: only the start can be checked; every root here is an object
        return None if content.lstrip().startswith("{") else "a cut answer that does not start an object"
    if finish != "stop":
        return "finish_reason %r" % finish
    try:
        doc = strict_loads(content)
    except ValueError as e:
        return "not JSON: %s" % e
    if schema is None:
        return None if isinstance(doc, dict) else "not an object"
    return schema_error(doc, schema)


def describe(model, body, content, finish, problem):
    return ("%s: %s\n  seed %s, finish_reason %r\n  response_format: %s\n  content: %r" % (
        model, problem, body.get("seed"), finish,
        json.dumps(body.get("response_format"), ensure_ascii=False), content))


class Tally:
    """Outcomes of one model's answers (thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.n = self.stop = self.length = self.tokens = 0
        self.failures = []
        self.by_feature = {}  # feature -> [answers, cut]

    def add(self, finish, tokens, features, failure=None):
        with self.lock:
            self.n += 1
            self.tokens += tokens
            self.stop += finish == "stop"
            self.length += finish == "length"
            for f in features:
                c = self.by_feature.setdefault(f, [0, 0])
                c[0] += 1
                c[1] += finish == "length"
            if failure:
                self.failures.append(failure)


def run_pool(jobs, n_target, n_min, deadline, work, stop_on_failures):
    """work(job) for the first jobs, CONCURRENCY at a time, until n_target are
    done, or the deadline has passed once n_min are, or stop_on_failures()."""
    lock = threading.Lock()
    nxt = [0]

    def worker():
        while True:
            with lock:
                i = nxt[0]
                if (i >= min(n_target, len(jobs)) or (i >= n_min and time.monotonic() > deadline)
                        or stop_on_failures()):
                    return
                nxt[0] += 1
            work(jobs[i])
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(CONCURRENCY)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class StructuredOutputTest(E2ETestCase):
    def setUp(self):
        super().setUp()
        cfg = {"server": {"listen": "127.0.0.1:0"},
               "local_models": {"stories": dict(stories(), max_batch=CONCURRENCY), "random": random_llama2()},
               "drift": {"db_path": self.db}}
        self.p = self.llmpin(config=cfg)
        self.scale = scale()

    def post(self, body, timeout=120.0):
        return H.post_json(self.p.addr, "/v1/chat/completions", body, timeout=timeout)

    def answer(self, body):
        """(content, finish_reason, completion tokens, problem) of a non-streamed request."""
        try:
            st, h, d, raw = self.post(body)
        except (OSError, http.client.HTTPException) as e:
            return None, None, 0, "request failed: %r" % e
        if st != 200 or not isinstance(d, dict):
            return None, None, 0, "HTTP %d: %s" % (st, raw[:500].decode("utf-8", "replace"))
        try:
            ch = d["choices"][0]
            return ch["message"]["content"], ch["finish_reason"], d["usage"]["completion_tokens"], None
        except (KeyError, IndexError, TypeError) as e:
            return None, None, 0, "malformed answer (%r): %s" % (e, raw[:500])

    def test_random_schemas_on_both_models(self):
        n_target = max(8, round(500 * self.scale))
        n_min = max(24, round(150 * self.scale))
        budget = float(os.environ.get("LLMPIN_STRUCTURED_BUDGET", "25"))
        seed0 = master_seed()
        schemas = make_schemas(200, seed0)
        tallies = {m: Tally() for m in MODEL_NAMES}
        t0 = time.monotonic()

        def run_model(model):
            tally = tallies[model]
            jobs = []
            for i in range(n_target):
                s, feats = schemas[i % len(schemas)]
                strict = (True, False, None)[i % 3]
                jobs.append((schema_body(model, s, seed0 + i, "s_%d" % (i % len(schemas)), strict), s, feats))

            def work(job):
                body, s, feats = job
                content, finish, tokens, problem = self.answer(body)
                problem = problem or judge(s, content, finish)
                tally.add(finish, tokens, feats, problem and describe(model, body, content, finish, problem))
            run_pool(jobs, n_target, n_min, t0 + budget, work, lambda: len(tally.failures) >= 5)

        threads = [threading.Thread(target=run_model, args=(m,)) for m in MODEL_NAMES]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0

        failures = [f for m in MODEL_NAMES for f in tallies[m].failures]
        if failures:
            self.fail("%d answers break the contract (schema seed %d):\n%s" % (
                len(failures), seed0, "\n".join(failures[:10])))
        print("\n  %d answers in %.1f s (schema seed %d)" % (sum(t.n for t in tallies.values()), elapsed, seed0),
              file=sys.stderr)
        for m in MODEL_NAMES:
            t = tallies[m]
            ratio = t.stop / t.n if t.n else 0.0
            print("  %s: %d answers, %d stop (%.1f%%), %d length, %.0f completion tokens each" % (
                m, t.n, t.stop, 100 * ratio, t.length, t.tokens / max(t.n, 1)), file=sys.stderr)
            cut = sorted(((c[1] / c[0], f) for f, c in t.by_feature.items() if c[0] >= 10), reverse=True)[:4]
            print("    most often cut: %s" % ", ".join("%s %.0f%%" % (f, 100 * r) for r, f in cut), file=sys.stderr)
        for m in MODEL_NAMES:
            t = tallies[m]
            self.assertGreaterEqual(t.n, n_min, m)
            self.assertGreaterEqual(t.stop, MIN_STOP_RATIO[m] * t.n,
                                    "%s: only %d of %d answers finished within %d tokens" % (
                                        m, t.stop, t.n, MAX_TOKENS))

    def test_control_without_response_format_is_not_valid_json(self):
        # the same requests unconstrained: the models write prose or noise,
        # so the checks above do reject what the grammar did not shape
        for model in MODEL_NAMES:
            valid = 0
            for i, (s, _) in enumerate(make_schemas(8, master_seed() + 1)):
                body = dict(schema_body(model, s, 1000 + i, "c"), max_tokens=100)
                del body["response_format"]
                content, finish, tokens, problem = self.answer(body)
                self.assertIsNone(problem)
                valid += finish == "stop" and judge(s, content, finish) is None
            self.assertLessEqual(valid, 1, model)

    def test_json_object(self):
        n = max(4, round(16 * self.scale))
        out = []
        lock = threading.Lock()

        def work(job):
            model, seed, messages = job
            body = {"model": model, "messages": messages, "temperature": 1, "seed": seed, "max_tokens": MAX_TOKENS,
                    "response_format": {"type": "json_object"}}
            content, finish, tokens, problem = self.answer(body)
            problem = problem or judge(None, content, finish)
            with lock:
                out.append((finish, problem and describe(model, body, content, finish, problem)))
        jobs = []
        for model in MODEL_NAMES:
            for i in range(n):
                # the word may be anywhere in the messages, in any case
                messages = ([{"role": "user", "content": "Describe a dog in JSON."}] if i % 2 else
                            [{"role": "system", "content": "You answer in json."},
                             {"role": "user", "content": "Describe a dog."}])
                jobs.append((model, 500 + i, messages))
        run_pool(jobs, len(jobs), len(jobs), 0, work, lambda: sum(bool(f) for _, f in out) >= 5)
        failures = [f for _, f in out if f]
        if failures:
            self.fail("%d json_object answers break the contract:\n%s" % (len(failures), "\n".join(failures)))
        stops = sum(f == "stop" for f, _ in out)
        print("\n  json_object: %d of %d answers stop" % (stops, len(out)), file=sys.stderr)
        self.assertGreaterEqual(stops, MIN_JSON_OBJECT_STOP_RATIO * len(out))

        for model in MODEL_NAMES:
            st, h, d, raw = self.post({"model": model, "messages": [{"role": "user", "content": "Describe a dog."}],
                                       "response_format": {"type": "json_object"}})
            err = self.assertError(st, d, 400, param="messages")
            self.assertRegex(err["message"], r"(?i)\bjson\b")

    def test_streamed_schema_answers_validate_and_match_the_unstreamed_ones(self):
        schemas = make_schemas(max(3, round(8 * self.scale)), master_seed() + 2)
        for model in MODEL_NAMES:
            for i, (s, _) in enumerate(schemas):
                body = schema_body(model, s, 2000 + i, "stream_%d" % i, stream=True)
                sse = H.SSE(self.p.addr, "/v1/chat/completions", body, timeout=120)
                self.addCleanup(sse.close)
                self.assertEqual(sse.status, 200, sse.resp.read()[:500] if sse.status != 200 else "")
                payloads = sse.read_all()
                self.assertIsNone(sse.error)
                self.assertEqual(payloads[-1], "[DONE]")
                chunks = [c for c in H.json_events(payloads) if c.get("choices")]
                content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
                finish = chunks[-1]["choices"][0]["finish_reason"]
                self.assertIn(finish, ("stop", "length"))
                self.assertTrue(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]))
                problem = judge(s, content, finish)
                self.assertIsNone(problem, describe(model, body, content, finish, problem))
                # alone in the engine both times: the same seed, the same text
                body.pop("stream")
                again, finish2, _, problem = self.answer(body)
                self.assertIsNone(problem)
                self.assertEqual((again, finish2), (content, finish), describe(model, body, content, finish, "differs"))

    def test_what_cannot_be_constrained_is_refused(self):
        def obj(prop):
            return {"type": "object", "properties": {"p": prop}, "required": ["p"], "additionalProperties": False}
        deep = {"type": "string"}
        for _ in range(70):
            deep = obj(deep)
        cases = [
            ("minLength", obj({"type": "string", "minLength": 3}), r"minLength"),
            ("not", obj({"not": {"type": "null"}}), r"'not'"),  # quoted: every refusal says "is not supported"
            ("oneOf", obj({"oneOf": [{"type": "string"}, {"type": "integer"}]}), r"oneOf"),
            ("uniqueItems", obj({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}), r"uniqueItems"),
            ("patternProperties", {"type": "object", "patternProperties": {"^x": {"type": "integer"}},
                                   "additionalProperties": False}, r"patternProperties"),
            ("missing $ref", obj({"$ref": "#/$defs/missing"}), r"missing"),
            ("contradicting bounds", obj({"type": "integer", "minimum": 5, "maximum": 3}), r"minimum|maximum"),
            ("recursion without base case",
             {"$defs": {"a": {"type": "object", "properties": {"x": {"$ref": "#/$defs/a"}}, "required": ["x"],
                              "additionalProperties": False}}, "$ref": "#/$defs/a"}, r"\$ref|recurs"),
            ("70 levels", deep, r"deep|depth|nest"),
            ("backreference", obj({"type": "string", "pattern": r"(a)\1"}), r"backreference|pattern"),
        ]
        for label, schema, want in cases:
            with self.subTest(label):
                st, h, d, raw = self.post(schema_body("stories", schema, 1, "refused"))
                err = self.assertError(st, d, 400, param="response_format")
                self.assertEqual(err["type"], "invalid_request_error", err)
                self.assertRegex(err["message"], want)
        for label, rf, param in [
                ("no name", {"type": "json_schema", "json_schema": {"schema": obj({"type": "string"})}},
                 "response_format.json_schema.name"),
                ("unknown type", {"type": "yaml"}, "response_format.type"),
                ("no type", {"json_schema": {"name": "x"}}, "response_format.type"),
                ("not an object", "json", "response_format")]:
            with self.subTest(label):
                st, h, d, raw = self.post({"model": "stories", "messages": [{"role": "user", "content": "JSON"}],
                                           "response_format": rf})
                self.assertError(st, d, 400, param=param)


if __name__ == "__main__":
    main()
