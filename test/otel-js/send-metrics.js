// Record a counter, a histogram and a gauge with the stock OpenTelemetry JS metrics SDK and export
// them once with one of its OTLP exporters. Usage: node send-metrics.js <proto|http> <base url> <api key> <run tag>
'use strict';
const { diag, DiagLogLevel } = require('@opentelemetry/api');
const { Resource } = require('@opentelemetry/resources');
const { MeterProvider, PeriodicExportingMetricReader } = require('@opentelemetry/sdk-metrics');

const [protocol, base, key, tag] = process.argv.slice(2);
const { OTLPMetricExporter } = require(protocol === 'proto'
  ? '@opentelemetry/exporter-metrics-otlp-proto'
  : '@opentelemetry/exporter-metrics-otlp-http');

diag.setLogger({
  error: (...a) => console.error('otel error:', ...a),
  warn: (...a) => console.error('otel warn:', ...a),
  info: () => {}, debug: () => {}, verbose: () => {},
}, DiagLogLevel.WARN);

const exporter = new OTLPMetricExporter({
  url: base + '/v1/metrics',
  headers: { Authorization: 'Bearer ' + key },
  timeoutMillis: 30000,
});
let failures = 0;
const orig = exporter.export.bind(exporter);
exporter.export = (m, done) => orig(m, (res) => {
  if (res.code !== 0) {
    failures++;
    console.error('export failed:', res.error && res.error.message);
  }
  done(res);
});
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 600000 });
const provider = new MeterProvider({ resource: new Resource({ 'service.name': 'metrics-' + tag }), readers: [reader] });
const meter = provider.getMeter('check');

const requests = meter.createCounter('js.requests.' + tag, { unit: '1' });
requests.add(3, { 'http.route': '/a' });
requests.add(4, { 'http.route': '/a' });
const latency = meter.createHistogram('js.latency.' + tag, { unit: 'ms' });
for (const v of [3, 40, 400]) latency.record(v, { 'http.route': '/a' });
meter.createObservableGauge('js.temp.' + tag, { unit: 'Cel' })
  .addCallback((r) => r.observe(42, { host: 'h1' }));

provider.forceFlush()
  .then(() => provider.shutdown())
  .then(() => process.exit(failures ? 1 : 0))
  .catch((e) => { console.error(e); process.exit(2); });
