// The official openai npm client against `llm-node api`: one plain and one
// streamed chat completion at temperature 0; the streamed text must equal the
// plain one. usage: node chat_test.mjs BASE_URL MODEL   (prints a JSON summary)
import OpenAI from "openai";

const [baseURL, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "not-needed", maxRetries: 0, timeout: 60000 });
const messages = [
  { role: "system", content: "You are a helpful assistant." },
  { role: "user", content: "Write one sentence about the sea." },
];

const plain = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24 });
const stream = await client.chat.completions.create({
  model, messages, temperature: 0, max_tokens: 24, stream: true, stream_options: { include_usage: true },
});
let streamed = "";
let chunks = 0;
let finish = null;
let usage = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (!choice) continue;
  streamed += choice.delta?.content ?? "";
  if (choice.finish_reason) finish = choice.finish_reason;
}

let unknownModel = null;
try {
  await client.chat.completions.create({ model: "no-such-model", messages });
} catch (e) {
  unknownModel = { status: e.status, code: e.code, type: e.type };
}

const text = plain.choices[0].message.content;
const summary = {
  plain: text, streamed, chunks, finish, plain_finish: plain.choices[0].finish_reason,
  usage: plain.usage, stream_usage: usage, unknownModel, equal: text === streamed,
};
console.log(JSON.stringify(summary));
process.exit(text === streamed && text.length > 0 ? 0 : 1);
