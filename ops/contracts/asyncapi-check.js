// docs/asyncapi.yaml checked by the official AsyncAPI parser (with its Avro
// schema parser, since the payloads are the .avsc files under schemas/):
// no error or warning, every message's payload resolved from its schema file;
// then every golden JSON event (schemas/golden/*.json, the bytes our encoder
// writes) validates against the payload schema the parser made of its Avro
// schema, and no other message's. Usage: node asyncapi-check.js DOC GOLDEN_DIR
'use strict';
const fs = require('fs');
const path = require('path');
const { Parser, fromFile } = require('@asyncapi/parser');
const { AvroSchemaParser } = require('@asyncapi/avro-schema-parser');
const Ajv = require('ajv');

const [doc, goldenDir] = process.argv.slice(2);
const fail = (msg) => { console.error(`error: ${msg}`); process.exitCode = 1; };

(async () => {
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  const { document, diagnostics } = await fromFile(parser, doc).parse();
  // Severity 0 is an error, 1 a warning: both fail the check.
  for (const d of diagnostics) {
    const line = `${d.code} at ${d.path.join('.') || '/'}: ${d.message}`;
    if (d.severity <= 1) fail(line); else console.log(`note: ${line}`);
  }
  if (!document) return fail(`${doc} did not parse`);
  console.log(`${doc}: AsyncAPI ${document.version()}, ${document.channels().length} channels, ` +
    `${document.operations().length} operations, ${document.allMessages().length} messages`);

  // event_type.event_version -> JSON Schema the parser made of the .avsc
  const schemas = new Map();
  for (const m of document.allMessages()) {
    if (!m.payload() || m.payload().type() !== 'object') continue;
    const version = m.id().match(/V(\d+)$/);
    if (!version) return fail(`message ${m.id()} names no version`);
    // A payload with a schemaFormat is a wrapper: { schemaFormat, schema }.
    const json = m.payload().json();
    schemas.set(`${m.name()}.v${version[1]}`, json.schema || json);
  }
  const ajv = new Ajv({ strict: false, allErrors: true });
  const golden = fs.readdirSync(goldenDir).filter((f) => f.endsWith('.json')).sort();
  if (golden.length === 0) return fail(`no golden JSON events in ${goldenDir}`);
  for (const f of golden) {
    const key = f.replace(/\.json$/, '');
    const event = JSON.parse(fs.readFileSync(path.join(goldenDir, f), 'utf8'));
    const own = schemas.get(key);
    if (!own) { fail(`${f}: no message in ${doc} for ${key}`); continue; }
    const validate = ajv.compile(own);
    if (!validate(event)) fail(`${f} does not match the payload of ${key}: ${ajv.errorsText(validate.errors)}`);
    // The check has teeth: without its task id, the event no longer matches.
    const broken = JSON.parse(JSON.stringify(event));
    delete broken.payload.task_id;
    if (validate(broken)) fail(`${key}'s payload schema accepts an event without payload.task_id`);
    for (const [other, schema] of schemas) {
      if (other.split('.').slice(0, 2).join('.') === key.split('.').slice(0, 2).join('.')) continue;
      if (ajv.validate(schema, event)) fail(`${f} also matches the payload of ${other}: the schemas do not tell the types apart`);
    }
  }
  console.log(`${golden.length} golden JSON events match their message's payload schema and no other type's`);
})().catch((e) => fail(e.stack || String(e)));
