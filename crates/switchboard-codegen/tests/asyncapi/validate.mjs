// Validates AsyncAPI documents with the official tools: the AsyncAPI 3.0.0 JSON Schema from
// `@asyncapi/specs` (through Ajv) and the official parser `@asyncapi/parser` (which also runs
// its Spectral rules). As a third check, every message example is validated against its
// message's `payload` and `headers` schemas (neither official tool does that for AsyncAPI 3).
// Usage: node validate.mjs FILE...
// Prints every problem; exits 1 when any document has an error (warnings are only printed).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const specs = require('@asyncapi/specs');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

// The bundled schema carries its own copy of the draft-07 meta-schema, so Ajv's is left out.
const ajv = new Ajv({ allErrors: true, strict: false, meta: false, validateSchema: false });
addFormats(ajv);
const validateSchema = ajv.compile(specs.schemas['3.0.0']);
const parser = new Parser();

// Checks every message example of `document` against the message's schemas.
function checkExamples(document) {
  const problems = [];
  const examplesAjv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
  addFormats(examplesAjv);
  for (const format of ['int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float32', 'float64']) {
    examplesAjv.addFormat(format, true);
  }
  // Only the parts schemas live in (the root's `id` is not a JSON Schema keyword).
  examplesAjv.addSchema({ channels: document.channels, components: document.components }, 'doc');
  for (const [channelId, channel] of Object.entries(document.channels ?? {})) {
    for (const [key, message] of Object.entries(channel.messages ?? {})) {
      const base = `doc#/channels/${channelId}/messages/${key}`;
      for (const [index, example] of (message.examples ?? []).entries()) {
        for (const part of ['payload', 'headers']) {
          if (example[part] === undefined || message[part] === undefined) continue;
          const validate = examplesAjv.getSchema(`${base}/${part}`);
          if (!validate(example[part])) {
            for (const error of validate.errors) {
              problems.push(`/channels/${channelId}/messages/${key}/examples/${index}/${part}${error.instancePath} ${error.message}`);
            }
          }
        }
      }
    }
  }
  return problems;
}

let failed = false;
for (const file of process.argv.slice(2)) {
  const text = readFileSync(file, 'utf8');
  const document = JSON.parse(text);
  let errors = 0;
  let warnings = 0;
  if (!validateSchema(document)) {
    for (const error of validateSchema.errors) {
      console.log(`${file}: error [json-schema] ${error.instancePath || '/'} ${error.message}`);
      errors += 1;
    }
  }
  for (const problem of checkExamples(document)) {
    console.log(`${file}: error [examples] ${problem}`);
    errors += 1;
  }
  const diagnostics = await parser.validate(text);
  for (const d of diagnostics) {
    const where = d.path.join('/');
    if (d.severity === DiagnosticSeverity.Error) {
      console.log(`${file}: error [parser ${d.code}] /${where} ${d.message}`);
      errors += 1;
    } else if (d.severity === DiagnosticSeverity.Warning) {
      console.log(`${file}: warning [parser ${d.code}] /${where} ${d.message}`);
      warnings += 1;
    }
  }
  console.log(`${file}: ${errors} errors, ${warnings} warnings`);
  if (errors > 0) failed = true;
}
process.exit(failed ? 1 : 0);
