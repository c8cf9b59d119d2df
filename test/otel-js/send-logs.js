// Send a fixed set of logs to ledgerd with the stock OpenTelemetry JS logs SDK and one of its
// OTLP exporters. Usage: node send-logs.js <proto|http> <base url> <api key> <run tag>
// Exits 0 once the SDK has flushed (the test then reads the logs back through the query API).
'use strict';
const { context, trace, TraceFlags, diag, DiagLogLevel } = require('@opentelemetry/api');
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { Resource } = require('@opentelemetry/resources');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');

const [protocol, base, key, tag] = process.argv.slice(2);
const { OTLPLogExporter } = require(protocol === 'proto'
  ? '@opentelemetry/exporter-logs-otlp-proto'
  : '@opentelemetry/exporter-logs-otlp-http');

diag.setLogger({
  error: (...a) => console.error('otel error:', ...a),
  warn: (...a) => console.error('otel warn:', ...a),
  info: () => {}, debug: () => {}, verbose: () => {},
}, DiagLogLevel.WARN);

const exporter = new OTLPLogExporter({
  url: base + '/v1/logs',
  headers: { Authorization: 'Bearer ' + key },
  timeoutMillis: 30000,
});
const provider = new LoggerProvider({
  resource: new Resource({
    'service.name': 'js-' + protocol,
    'service.version': '3.1.4',
    'deployment.environment': 'qa',
  }),
});
let failures = 0;
const processor = new BatchLogRecordProcessor(exporter, { scheduledDelayMillis: 100 });
provider.addLogRecordProcessor(processor);
const origExport = exporter.export.bind(exporter);
exporter.export = (items, done) => origExport(items, (res) => {
  if (res.code !== 0) {
    failures++;
    console.error('export failed:', res.error && res.error.message);
  }
  done(res);
});

const logger = provider.getLogger('ledger-check', '0.0.1');
const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const spanId = '00f067aa0ba902b7';
const ctx = trace.setSpanContext(context.active(), { traceId, spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });

logger.emit({
  severityNumber: SeverityNumber.INFO, severityText: 'INFO', body: 'hello ' + tag,
  attributes: { 'user.id': 7, 'run': tag }, context: ctx,
});
logger.emit({
  severityNumber: SeverityNumber.ERROR, severityText: 'ERROR', body: 'failed ' + tag,
  attributes: {
    'exception.type': 'TypeError', 'exception.message': 'x is undefined',
    'exception.stacktrace': 'TypeError: x is undefined\n    at f (/app/a.js:3:7)\n    at g (/app/b.js:9:1)',
    'run': tag,
  },
});
logger.emit({
  severityNumber: SeverityNumber.WARN, body: 'GET /items ' + tag,
  attributes: {
    'http.request.method': 'GET', 'http.route': '/items/:id', 'http.response.status_code': 404,
    'ledger.duration_ms': 3.5, 'run': tag,
  },
});

provider.forceFlush()
  .then(() => provider.shutdown())
  .then(() => process.exit(failures ? 1 : 0))
  .catch((e) => { console.error(e); process.exit(2); });
