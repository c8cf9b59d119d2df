-- 0005_alert_custom_metrics: alert rules over OTLP metric points (docs/alerts.md "Custom metrics").
--
-- * metric = 'custom' evaluates the points of the metric named metric_name (metric_points in the
--   logs database) inside the rule's window, reduced by aggregation: avg, min, max, sum, last
--   (the newest point) or count (number of points). Log metrics leave both columns NULL.
ALTER TABLE alert_rules ADD COLUMN metric_name TEXT;
ALTER TABLE alert_rules ADD COLUMN aggregation VARCHAR(8);
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_custom_metric CHECK (
    (metric <> 'custom' AND metric_name IS NULL AND aggregation IS NULL)
    OR (metric = 'custom' AND metric_name IS NOT NULL
        AND aggregation IN ('avg', 'min', 'max', 'sum', 'last', 'count')));
