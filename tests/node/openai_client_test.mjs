// The official OpenAI client (openai on npm, pinned in package.json) against `ponder serve`:
// models.list, a chat completion, a streamed one (content collected, progress chunks passed
// through), a text completion, and the errors the client raises for a 400 and a 401.
// Usage: node openai_client_test.mjs PONDER_BINARY STORIES260K_GGUF
import assert from 'node:assert/strict';
import OpenAI from 'openai';

import { startServe } from './serve.mjs';

const [ponder, model] = process.argv.slice(2);
if (!ponder || !model) {
  console.error('usage: node openai_client_test.mjs PONDER_BINARY MODEL_GGUF');
  process.exit(2);
}

const key = 'test-key';
const server = await startServe(ponder, ['-m', model, '--threads', '1', '--max-n', '4', '--max-tokens', '24',
                                        '--max-prompt-tokens', '64', '--api-key', key]);
const { url } = server;

try {
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: key, maxRetries: 0 });

  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ['stories260K']);

  const messages = [{ role: 'user', content: 'Once upon a time' }];
  // Search parameters ride along in the body; the client passes unknown fields through.
  const chat = await client.chat.completions.create({
    model: 'stories260K', messages, n: 3, seed: 1, strategy: 'majority', search_details: true,
  });
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices.length, 1);
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.ok(chat.choices[0].message.content.length > 0);
  assert.equal(chat.ponder.solutions.length, 3);
  const u = chat.usage;
  assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens + u.verifier_tokens);
  assert.equal(u.completion_tokens, chat.ponder.solutions.reduce((sum, s) => sum + s.tokens, 0));

  // Greedy, streamed and not: the same text, the streamed one collected from its deltas.
  const greedy = { model: 'stories260K', messages, n: 1, temperature: 0, max_tokens: 20 };
  const whole = await client.chat.completions.create(greedy);
  const stream = await client.chat.completions.create({
    ...greedy, stream: true, stream_options: { include_usage: true },
  });
  let content = '';
  let progress = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.ponder?.progress) progress += 1;
    for (const choice of chunk.choices) {
      content += choice.delta?.content ?? '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(content.length > 0);
  assert.equal(content, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.ok(progress >= 1, 'progress chunks arrive while the search runs');
  assert.deepEqual(usage, whole.usage);

  const completion = await client.completions.create({
    model: 'stories260K', prompt: 'Once upon a time', max_tokens: 20, temperature: 0, n: 1,
  });
  assert.equal(completion.object, 'text_completion');
  // Without a chat template, a chat's one user message is the prompt.
  assert.equal(completion.choices[0].text, whole.choices[0].message.content);

  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages }),
                       (e) => e instanceof OpenAI.BadRequestError && e.param === 'model');
  await assert.rejects(client.chat.completions.create({ model: 'stories260K', messages, strategy: 'beam' }),
                       (e) => e instanceof OpenAI.BadRequestError && e.param === 'strategy');
  const stranger = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'wrong', maxRetries: 0 });
  await assert.rejects(stranger.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
} finally {
  const { code, signal } = await server.stop();
  assert.equal(signal, null, server.stderr());
  assert.equal(code, 0, server.stderr());
}
console.log('openai client: ok');
