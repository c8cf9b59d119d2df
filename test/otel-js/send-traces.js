// Send one trace across two services with the stock OpenTelemetry JS tracing SDK and one of its
// OTLP exporters. Usage: node send-traces.js <proto|http> <base url> <api key> <run tag>
// Prints {"trace_id": ...} once both providers have flushed.
'use strict';
const { context, trace, SpanKind, SpanStatusCode, diag, DiagLogLevel } = require('@opentelemetry/api');
const { Resource } = require('@opentelemetry/resources');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');

const [protocol, base, key, tag] = process.argv.slice(2);
const { OTLPTraceExporter } = require(protocol === 'proto'
  ? '@opentelemetry/exporter-trace-otlp-proto'
  : '@opentelemetry/exporter-trace-otlp-http');

diag.setLogger({
  error: (...a) => console.error('otel error:', ...a),
  warn: (...a) => console.error('otel warn:', ...a),
  info: () => {}, debug: () => {}, verbose: () => {},
}, DiagLogLevel.WARN);

let failures = 0;
function provider(service) {
  const exporter = new OTLPTraceExporter({
    url: base + '/v1/traces',
    headers: { 'X-API-Key': key },
    timeoutMillis: 30000,
  });
  const orig = exporter.export.bind(exporter);
  exporter.export = (spans, done) => orig(spans, (res) => {
    if (res.code !== 0) {
      failures++;
      console.error('export failed:', res.error && res.error.message);
    }
    done(res);
  });
  const p = new BasicTracerProvider({ resource: new Resource({ 'service.name': service + '-' + tag }) });
  p.addSpanProcessor(new BatchSpanProcessor(exporter, { scheduledDelayMillis: 100 }));
  return p;
}

const front = provider('frontend');
const back = provider('backend');
const ft = front.getTracer('check');
const bt = back.getTracer('check');

const root = ft.startSpan('GET /cart', { kind: SpanKind.SERVER, attributes: { 'http.route': '/cart', run: tag } });
const rootCtx = trace.setSpan(context.active(), root);
const call = ft.startSpan('POST /price', { kind: SpanKind.CLIENT }, rootCtx);
const callCtx = trace.setSpan(rootCtx, call);
const srv = bt.startSpan('price', { kind: SpanKind.SERVER }, callCtx);
const srvCtx = trace.setSpan(callCtx, srv);
const db = bt.startSpan('SELECT prices', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, srvCtx);
const err = new TypeError('price missing');
db.recordException(err);
db.setStatus({ code: SpanStatusCode.ERROR, message: 'price missing' });
setTimeout(() => {
  db.end();
  srv.end();
  call.end();
  root.end();
  Promise.all([front.forceFlush(), back.forceFlush()])
    .then(() => Promise.all([front.shutdown(), back.shutdown()]))
    .then(() => {
      console.log(JSON.stringify({ trace_id: root.spanContext().traceId }));
      process.exit(failures ? 1 : 0);
    })
    .catch((e) => { console.error(e); process.exit(2); });
}, 20);
