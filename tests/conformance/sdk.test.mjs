// sdk.test.mjs - the official `openai` npm package against llmpin, with only
// baseURL (and the key) changed: the drop-in promise, checked with the client
// real applications use. llmpin forwards to the project's mock upstream.
//
// Run by ctest (see CMakeLists.txt) as `node --test`, with LLMPIN_BIN and
// LLMPIN_MOCK_BIN in the environment. maxRetries is 0 everywhere so that a
// typed error is the first answer, not the SDK's retry.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startLlmpin, startMock, waitUntil } from './procs.mjs';

const CLIENT_KEY = 'sk-conformance-client-1';
let mock;
let llmpin;
let client;

before(async () => {
  mock = await startMock('--fingerprint', 'fp_sdk_1');
  llmpin = await startLlmpin({
    server: { listen: '127.0.0.1:0' },
    keys: [{ name: 'sdk', key: CLIENT_KEY }],
    upstreams: { mock: { base_url: mock.baseURL } },
    routes: [{
      // an exact name as well as globs: llmpin lists exact route names in
      // /v1/models (globs name no particular model)
      name: 'sdk', match: ['gpt-4o-mini', 'gpt-*', 'mock-*', 'text-embedding-*'], mode: 'remote',
      targets: [{ upstream: 'mock' }], retry: { max_attempts: 1 },
    }],
  });
  client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: llmpin.baseURL, maxRetries: 0, timeout: 30000 });
});

after(async () => {
  if (llmpin) await llmpin.stop();
  if (mock) await mock.stop();
});

describe('openai SDK through llmpin', () => {
  test('chat completion, non-stream', async () => {
    const r = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello sdk' }],
      temperature: 0,
      seed: 1,
    });
    assert.equal(r.object, 'chat.completion');
    assert.match(r.id, /^chatcmpl-mock-\d+$/);
    assert.equal(r.model, 'gpt-4o-mini');
    assert.equal(r.system_fingerprint, 'fp_sdk_1');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, 'mock answer to: hello sdk');
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: 4, completion_tokens: 5, total_tokens: 9 });
  });

  test('chat completion, non-stream, withResponse exposes llmpin headers', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] })
      .withResponse();
    assert.equal(data.choices[0].message.content, 'mock answer to: x');
    assert.ok(response.headers.get('x-request-id'));
    assert.equal(response.headers.get('x-llmpin-route'), 'sdk');
  });

  test('chat stream with include_usage: usage in the last chunk', async () => {
    const stream = await client.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'stream this please' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    assert.ok(chunks.length >= 5, `only ${chunks.length} chunks`);
    const text = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].delta.content ?? '').join('');
    assert.equal(text, 'mock answer to: stream this please');
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const last = chunks[chunks.length - 1];
    assert.deepEqual(last.choices, []);
    assert.deepEqual(last.usage, { prompt_tokens: 3, completion_tokens: 6, total_tokens: 9 });
    const finish = chunks.filter((c) => c.choices.length).map((c) => c.choices[0].finish_reason);
    assert.equal(finish[finish.length - 1], 'stop');
  });

  test('legacy completions', async () => {
    const r = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'say a b', max_tokens: 5 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].text, 'mock answer to: say a b');
    assert.equal(r.usage.prompt_tokens, 3);
  });

  test('embeddings (SDK default base64 and explicit float agree)', async () => {
    const b64 = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['alpha', 'beta'] });
    const flt = await client.embeddings.create({
      model: 'text-embedding-3-small', input: ['alpha', 'beta'], encoding_format: 'float',
    });
    assert.equal(b64.data.length, 2);
    assert.equal(b64.data[0].embedding.length, 8);
    assert.deepEqual(b64.data.map((d) => d.embedding), flt.data.map((d) => d.embedding));
    assert.notDeepEqual(flt.data[0].embedding, flt.data[1].embedding);
    assert.equal(flt.data[1].index, 1);
  });

  test('models.list', async () => {
    const ids = [];
    for await (const m of client.models.list()) {
      assert.equal(typeof m.id, 'string');
      assert.equal(m.object, 'model');
      ids.push(m.id);
    }
    assert.ok(ids.includes('gpt-4o-mini'), `gpt-4o-mini not listed: ${ids}`);
    const one = await client.models.retrieve('gpt-4o-mini');
    assert.equal(one.id, 'gpt-4o-mini');
  });

  test('parallel tool calls streamed with indices 0..n-1', async () => {
    const stream = await client.chat.completions.create({
      model: 'mock-tools',
      messages: [{ role: 'user', content: 'weather in Paris and the time' }],
      tools: [
        { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
        { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { tz: { type: 'string' } } } } },
      ],
      stream: true,
    });
    const calls = [];
    let finish = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      for (const tc of choice.delta.tool_calls ?? []) {
        calls[tc.index] ??= { id: '', name: '', args: '' };
        if (tc.id) calls[tc.index].id = tc.id;
        if (tc.function?.name) calls[tc.index].name += tc.function.name;
        if (tc.function?.arguments) calls[tc.index].args += tc.function.arguments;
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    assert.equal(calls.length, 2);
    assert.deepEqual(calls.map((c) => c.name), ['get_weather', 'get_time']);
    assert.deepEqual(calls.map((c) => c.id), ['call_mock_0', 'call_mock_1']);
    assert.deepEqual(JSON.parse(calls[0].args), { city: 'Paris' });
    assert.deepEqual(JSON.parse(calls[1].args), { tz: 'UTC' });
    assert.equal(finish, 'tool_calls');
  });

  test('AuthenticationError for a wrong client key', async () => {
    const bad = new OpenAI({ apiKey: 'sk-wrong-key-0000', baseURL: llmpin.baseURL, maxRetries: 0 });
    await assert.rejects(
      bad.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.AuthenticationError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 401);
        assert.equal(e.code, 'invalid_api_key');
        assert.ok(!String(e.message).includes('sk-wrong-key-0000'), 'the key was echoed');
        return true;
      },
    );
  });

  test('NotFoundError for a model no route matches', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'claude-not-routed', messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.NotFoundError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 404);
        assert.equal(e.code, 'model_not_found');
        return true;
      },
    );
  });

  test('BadRequestError for a wrongly typed field', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'x' }], temperature: 'hot' }),
      (e) => {
        assert.ok(e instanceof OpenAI.BadRequestError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.status, 400);
        assert.equal(e.param, 'temperature');
        assert.equal(e.code, 'invalid_type');
        assert.match(e.message, /temperature/);
        return true;
      },
    );
  });

  test('upstream 429 surfaces as RateLimitError', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'mock-429', messages: [{ role: 'user', content: 'x' }] }),
      (e) => {
        assert.ok(e instanceof OpenAI.RateLimitError, `got ${e?.constructor?.name}: ${e}`);
        assert.equal(e.headers.get('retry-after'), '1');
        return true;
      },
    );
  });

  test('abort mid-stream with AbortController cancels the upstream stream', async () => {
    await mock.reset();
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      { model: 'mock-long', messages: [{ role: 'user', content: 'go on' }], stream: true },
      { signal: ac.signal },
    );
    // The SDK ends the iteration quietly on abort (or, in some versions,
    // throws APIUserAbortError); either way no more chunks arrive.
    let n = 0;
    let thrown = null;
    try {
      for await (const chunk of stream) {
        assert.ok(chunk.choices);
        if (++n === 5) ac.abort();
      }
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown === null || thrown instanceof OpenAI.APIUserAbortError || thrown?.name === 'AbortError',
      `unexpected error after abort: ${thrown}`);
    assert.ok(n >= 5 && n < 100, `read ${n} chunks`);
    const cancelled = await waitUntil(async () => (await mock.stats()).streams_cancelled_by_client >= 1, 2000);
    assert.ok(cancelled, `the mock never saw the cancellation: ${JSON.stringify(await mock.stats())}`);
    assert.equal((await mock.stats()).streams_completed, 0);
  });
});

// The pinned local model (stories260K, 64-dimensional embeddings) through
// the same SDK: its embeddings come base64-encoded by default, as OpenAI's.
describe('openai SDK against the local model', () => {
  const STORIES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/models/stories260K.gguf');
  let local;
  let lclient;
  before(async () => {
    local = await startLlmpin({
      server: { listen: '127.0.0.1:0' },
      local_models: {
        stories: { path: STORIES, sha256: '78c4953cf6ef0e0dd7fc67daa5f89f5ece8f5de721d77e5ead669645a508f9ab' },
      },
    });
    lclient = new OpenAI({ apiKey: 'unused', baseURL: local.baseURL, maxRetries: 0, timeout: 30000 });
  });
  after(async () => {
    if (local) await local.stop();
  });

  test('embeddings: the SDK default base64 decodes to the float ones', async () => {
    const b64 = await lclient.embeddings.create({ model: 'stories', input: ['a cat', 'a dog'] });
    const flt = await lclient.embeddings.create({ model: 'stories', input: ['a cat', 'a dog'], encoding_format: 'float' });
    assert.equal(b64.data.length, 2);
    for (let k = 0; k < 2; k++) {
      assert.equal(b64.data[k].embedding.length, 64);
      assert.equal(flt.data[k].embedding.length, 64);
      // float32 values: the decimal text rounds back to the same float32
      assert.deepEqual(b64.data[k].embedding, flt.data[k].embedding.map(Math.fround));
      const norm = Math.sqrt(b64.data[k].embedding.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    }
    assert.notDeepEqual(b64.data[0].embedding, b64.data[1].embedding);
  });

  test('embeddings: dimensions other than the model\'s and unknown encodings are 400s naming them', async () => {
    await assert.rejects(lclient.embeddings.create({ model: 'stories', input: 'x', dimensions: 16 }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'dimensions' &&
        /makes 64-dimensional embeddings/.test(e.message));
    const same = await lclient.embeddings.create({ model: 'stories', input: 'x', dimensions: 64, encoding_format: 'float' });
    assert.equal(same.data[0].embedding.length, 64);
    await assert.rejects(lclient.embeddings.create({ model: 'stories', input: 'x', encoding_format: 'int8' }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'encoding_format');
  });

  const PERSON = {
    type: 'object', additionalProperties: false, required: ['name', 'age', 'tags'],
    properties: {
      name: { type: 'string' },
      age: { type: 'integer', minimum: 0, maximum: 120 },
      tags: { type: 'array', items: { enum: ['a', 'b', 'c'] }, maxItems: 3 },
    },
  };

  test('structured output: the SDK\'s parse() gets a document of the schema', async () => {
    const r = await lclient.chat.completions.parse({
      model: 'stories', max_tokens: 200, seed: 11,
      messages: [{ role: 'user', content: 'A person, please.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema: PERSON } },
    });
    const ch = r.choices[0];
    assert.equal(ch.finish_reason, 'stop', ch.message.content);
    const p = ch.message.parsed;
    assert.deepEqual(Object.keys(p), ['name', 'age', 'tags']);
    assert.equal(typeof p.name, 'string');
    assert.ok(Number.isInteger(p.age) && p.age >= 0 && p.age <= 120, JSON.stringify(p));
    assert.ok(Array.isArray(p.tags) && p.tags.length <= 3 && p.tags.every((t) => ['a', 'b', 'c'].includes(t)));
  });

  test('structured output streamed: the deltas join into the document', async () => {
    const stream = await lclient.chat.completions.create({
      model: 'stories', max_tokens: 200, seed: 11, stream: true,
      messages: [{ role: 'user', content: 'A person, please.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON } },
    });
    let text = '';
    let finish = null;
    for await (const c of stream) {
      if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
    }
    assert.equal(finish, 'stop');
    assert.deepEqual(Object.keys(JSON.parse(text)), ['name', 'age', 'tags']);
  });

  test('a schema keyword the local model cannot constrain to is a 400 naming it', async () => {
    await assert.rejects(lclient.chat.completions.create({
      model: 'stories', messages: [{ role: 'user', content: 'x' }],
      response_format: { type: 'json_schema', json_schema: { name: 's', schema: { type: 'string', minLength: 3 } } },
    }), (e) => e instanceof OpenAI.BadRequestError && e.param === 'response_format' && /'minLength'/.test(e.message));
  });

  test('logprobs: the SDK reads them, and they agree with top_logprobs', async () => {
    const r = await lclient.chat.completions.create({
      model: 'stories', max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 5,
      messages: [{ role: 'user', content: 'Once upon a time' }],
    });
    const lp = r.choices[0].logprobs.content;
    assert.equal(lp.length, 8);
    assert.equal(lp.map((e) => Buffer.from(e.bytes).toString('utf8')).join(''), r.choices[0].message.content);
    for (const e of lp) {
      assert.equal(e.top_logprobs.length, 5);
      assert.equal(e.top_logprobs[0].logprob, e.logprob);
      assert.ok(e.logprob <= 0);
    }
  });
});
