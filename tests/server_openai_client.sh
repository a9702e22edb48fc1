#!/usr/bin/env bash
# The official `openai` npm client against `bloomz serve` (issue 18): completions.create with and
# without stream must give the text `bloomz -p PROMPT --json` gives (greedy). The package is
# installed into a temporary folder; if that fails the test fails (it is not skipped).
#   tests/server_openai_client.sh BLOOMZ_BINARY MODEL
set -euo pipefail
BLOOMZ="$1"
MODEL="$2"
WORK=$(mktemp -d /tmp/bloomz-openai-XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "FAIL: $tool is not installed (Debian: nodejs, npm)" >&2; exit 1; }
done
# Major version 4: the CommonJS API used below (new OpenAI({baseURL}), completions.create).
if ! (cd "$WORK" && timeout 300 npm install --no-audit --no-fund --loglevel=error openai@4 >"$WORK/npm.log" 2>&1); then
  echo "FAIL: npm install openai@4 failed:" >&2
  cat "$WORK/npm.log" >&2
  exit 1
fi

"$BLOOMZ" serve -m "$MODEL" --host 127.0.0.1 --port 0 --parallel 2 -t 2 --api-key sk-openai-test 2>"$WORK/serve.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/serve.log" | head -1)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$PORT" ] || { echo "FAIL: the server did not start" >&2; cat "$WORK/serve.log" >&2; exit 1; }

PROMPT="Translate to French: the cat"
"$BLOOMZ" -m "$MODEL" -p "$PROMPT" --no-escape -n 24 --json -q -t 2 >"$WORK/cli.json"

cat >"$WORK/check.js" <<'JS'
const OpenAI = require('openai');
const fs = require('fs');
const [port, prompt, cliFile] = process.argv.slice(2);
const want = JSON.parse(fs.readFileSync(cliFile, 'utf8')).text;
const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'sk-openai-test', maxRetries: 0, timeout: 60000 });
(async () => {
  const plain = await client.completions.create({ model: 'bloomz', prompt, max_tokens: 24, temperature: 0 });
  let streamed = '';
  let finish = null;
  const stream = await client.completions.create({ model: 'bloomz', prompt, max_tokens: 24, temperature: 0, stream: true });
  for await (const chunk of stream) {
    if (chunk.choices.length > 0) {
      streamed += chunk.choices[0].text;
      if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
  }
  let failed = false;
  const check = (what, got, expected) => {
    if (got !== expected) { console.error(`FAIL: ${what}: ${JSON.stringify(got)} != ${JSON.stringify(expected)}`); failed = true; }
  };
  check('completions.create text', plain.choices[0].text, want);
  check('object', plain.object, 'text_completion');
  check('streamed text', streamed, want);
  check('streamed finish_reason', finish, plain.choices[0].finish_reason);
  // A wrong key is the client's AuthenticationError (401).
  const bad = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: 'wrong', maxRetries: 0 });
  try {
    await bad.completions.create({ model: 'bloomz', prompt, max_tokens: 2 });
    check('wrong key', 'accepted', 'rejected');
  } catch (e) {
    check('wrong key status', e.status, 401);
  }
  if (failed) process.exit(1);
  console.log(`ok: ${JSON.stringify(want)}`);
})().catch((e) => { console.error('FAIL:', e); process.exit(1); });
JS
NODE_PATH="$WORK/node_modules" timeout 120 node "$WORK/check.js" "$PORT" "$PROMPT" "$WORK/cli.json"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=""
