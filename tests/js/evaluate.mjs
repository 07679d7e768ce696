// Evaluates flagd documents with the JavaScript engine (@openfeature/flagd-core), for the
// cross-engine cohort test (tests/test_flags.py). Reads one JSON object on stdin:
//   {"documents": [<flagd document>, ...], "contexts": [<evaluation context>, ...],
//    "flags": [{"key": "...", "type": "string" | "boolean", "default": ...}, ...]}
// and writes, for every document, context and flag (in that order), {value, variant, reason,
// errorCode} as one JSON array on stdout. A document the engine refuses to load is an error.
import { FlagdCore } from '@openfeature/flagd-core';

const quiet = { error() {}, warn() {}, info() {}, debug() {} };

function read(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    stream.on('error', reject);
  });
}

const input = JSON.parse(await read(process.stdin));
const out = [];
for (const document of input.documents) {
  const core = new FlagdCore(undefined, quiet);
  core.setConfigurations(JSON.stringify(document)); // throws on an invalid document
  const rows = [];
  for (const context of input.contexts) {
    const row = {};
    for (const flag of input.flags) {
      const resolve = flag.type === 'boolean' ? core.resolveBooleanEvaluation : core.resolveStringEvaluation;
      const r = resolve.call(core, flag.key, flag.default, context, quiet);
      row[flag.key] = { value: r.value, variant: r.variant ?? null, reason: r.reason, errorCode: r.errorCode ?? null };
    }
    rows.push(row);
  }
  out.push(rows);
}
process.stdout.write(JSON.stringify(out));
