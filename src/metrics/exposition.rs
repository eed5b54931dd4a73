//! The Prometheus endpoint (`--metrics-listen`): every pipeline's figures in
//! the text exposition format, read from the live counters at each scrape.

use std::fmt::Write as _;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{Monitor, PipelineState, PipelineStats};

/// Reads the monitor's pipelines at scrape time.
#[derive(Debug)]
struct PipelinesCollector(Arc<Monitor>);

type Labels = Vec<(&'static str, String)>;

/// One metric family: a name, help, type and its labelled values.
struct Family<'a, T> {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    values: Vec<(Labels, T)>,
    encoder: &'a dyn Fn(&T, prometheus_client::encoding::MetricEncoder) -> std::fmt::Result,
}

impl<T> Family<'_, T> {
    fn encode(self, encoder: &mut DescriptorEncoder) -> std::fmt::Result {
        if self.values.is_empty() {
            return Ok(());
        }
        let mut metric =
            encoder.encode_descriptor(self.name, self.help, self.unit.as_ref(), self.kind)?;
        for (labels, value) in &self.values {
            (self.encoder)(value, metric.encode_family(labels)?)?;
        }
        Ok(())
    }
}

fn counter(v: &u64, e: prometheus_client::encoding::MetricEncoder) -> std::fmt::Result {
    ConstCounter::new(*v).encode(e)
}

fn counter_f(v: &f64, e: prometheus_client::encoding::MetricEncoder) -> std::fmt::Result {
    ConstCounter::new(*v).encode(e)
}

fn gauge(v: &f64, e: prometheus_client::encoding::MetricEncoder) -> std::fmt::Result {
    ConstGauge::new(*v).encode(e)
}

impl Collector for PipelinesCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let pipelines = self.0.pipelines();
        let stats: Vec<(Arc<super::PipelineMetrics>, PipelineStats)> = pipelines
            .into_iter()
            .map(|p| {
                let s = p.stats();
                (p, s)
            })
            .collect();
        let pl = |p: &super::PipelineMetrics| -> Labels {
            vec![("pipeline", p.name.clone()), ("source", p.source.clone())]
        };
        let per_pipeline_counter = |name, help, f: &dyn Fn(&PipelineStats) -> u64| Family {
            name,
            help,
            unit: None,
            kind: MetricType::Counter,
            values: stats.iter().map(|(p, s)| (pl(p), f(s))).collect(),
            encoder: &counter,
        };
        per_pipeline_counter(
            "sluice_records_in",
            "Records read by the pipeline's source",
            &|s| s.counters.records_in,
        )
        .encode(&mut encoder)?;
        per_pipeline_counter(
            "sluice_bytes_in",
            "Bytes of records read by the pipeline's source",
            &|s| s.counters.bytes_in,
        )
        .encode(&mut encoder)?;
        per_pipeline_counter(
            "sluice_records_out",
            "Rows written by the pipeline's sink",
            &|s| s.counters.records_out,
        )
        .encode(&mut encoder)?;
        per_pipeline_counter(
            "sluice_bytes_out",
            "Bytes the pipeline's sink wrote (encoded records; Arrow bytes for a view)",
            &|s| s.counters.bytes_out,
        )
        .encode(&mut encoder)?;
        per_pipeline_counter("sluice_errors", "Records that could not be decoded", &|s| {
            s.counters.errors
        })
        .encode(&mut encoder)?;
        per_pipeline_counter(
            "sluice_dead_lettered",
            "Bad records written to the dead-letter target",
            &|s| s.counters.dead_lettered,
        )
        .encode(&mut encoder)?;
        per_pipeline_counter(
            "sluice_late_records",
            "Rows dropped because they arrived behind the watermark",
            &|s| s.counters.late,
        )
        .encode(&mut encoder)?;
        per_pipeline_counter(
            "sluice_evicted_rows",
            "Rows a join's state let go: freed by the watermark or forgotten by state_ttl",
            &|s| s.counters.evicted,
        )
        .encode(&mut encoder)?;
        let per_pipeline_gauge =
            |name, help, unit: Option<Unit>, f: &dyn Fn(&PipelineStats) -> Option<f64>| Family {
                name,
                help,
                unit,
                kind: MetricType::Gauge,
                values: stats
                    .iter()
                    .filter_map(|(p, s)| f(s).map(|v| (pl(p), v)))
                    .collect(),
                encoder: &gauge,
            };
        per_pipeline_gauge(
            "sluice_pipeline_running",
            "1 while the pipeline runs, 0 once stopped or failed",
            None,
            &|s| Some(f64::from(u8::from(s.state == PipelineState::Running))),
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_pipeline_failed",
            "1 if the pipeline failed",
            None,
            &|s| {
                Some(f64::from(u8::from(matches!(
                    s.state,
                    PipelineState::Failed(_)
                ))))
            },
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_arrival_rate",
            "Records arriving at the source per second over the last 10 s (lambda)",
            None,
            &|s| Some(s.arrival_10s),
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_service_rate",
            "Records per busy second of the slowest stage over the last 10 s (mu)",
            None,
            &|s| s.service_10s,
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_utilisation",
            "Arrival rate over service rate (rho); at or above 1 the pipeline falls behind",
            None,
            &|s| s.utilisation_10s(),
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_falling_behind",
            "1 when utilisation stayed at or above 1 for the last 10 s",
            None,
            &|s| Some(f64::from(u8::from(s.falling_behind))),
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_source_backlog_records",
            "Records available to the source but not read yet (Kafka lag, generator rows due)",
            None,
            &|s| s.backlog.map(|b| b as f64),
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_watermark_timestamp",
            "The pipeline's watermark (event time, seconds since the epoch)",
            Some(Unit::Seconds),
            &|s| s.watermark.map(|w| w as f64 / 1000.0),
        )
        .encode(&mut encoder)?;
        per_pipeline_gauge(
            "sluice_watermark_lag",
            "How far the watermark is behind the wall clock",
            Some(Unit::Seconds),
            &|s| s.watermark_lag().map(|d| d.as_secs_f64()),
        )
        .encode(&mut encoder)?;

        Family {
            name: "sluice_kafka_consumer_lag",
            help: "Records in a Kafka partition not read yet",
            unit: None,
            kind: MetricType::Gauge,
            values: stats
                .iter()
                .flat_map(|(p, s)| {
                    s.partitions.iter().filter_map(|(part, lag)| {
                        let mut l = pl(p);
                        l.push(("partition", part.to_string()));
                        lag.lag().map(|v| (l, v as f64))
                    })
                })
                .collect(),
            encoder: &gauge,
        }
        .encode(&mut encoder)?;

        Family {
            name: "sluice_end_to_end_latency",
            help: "From the source reading a batch to the sink having written what it produced",
            unit: Some(Unit::Seconds),
            kind: MetricType::Histogram,
            values: stats.iter().map(|(p, _)| (pl(p), Arc::clone(p))).collect(),
            encoder: &|p: &Arc<super::PipelineMetrics>, e| p.latency_seconds.encode(e),
        }
        .encode(&mut encoder)?;

        // Per stage: source, each operator, sink.
        let stages: Vec<(Labels, &super::NodeStats)> = stats
            .iter()
            .flat_map(|(p, s)| {
                s.nodes.iter().enumerate().map(|(i, n)| {
                    let mut l = pl(p);
                    l.push(("stage", i.to_string()));
                    l.push(("operator", n.node.name.clone()));
                    (l, n)
                })
            })
            .collect();
        let load = std::sync::atomic::Ordering::Relaxed;
        let stage_counter = |name, help, f: &dyn Fn(&super::NodeStats) -> u64| Family {
            name,
            help,
            unit: None,
            kind: MetricType::Counter,
            values: stages.iter().map(|(l, n)| (l.clone(), f(n))).collect(),
            encoder: &counter,
        };
        stage_counter("sluice_operator_records_in", "Rows into the stage", &|n| {
            n.node.records_in.load(load)
        })
        .encode(&mut encoder)?;
        stage_counter(
            "sluice_operator_records_out",
            "Rows out of the stage",
            &|n| n.node.records_out.load(load),
        )
        .encode(&mut encoder)?;
        stage_counter(
            "sluice_operator_bytes_in",
            "Arrow bytes of the batches into the stage",
            &|n| n.node.bytes_in.load(load),
        )
        .encode(&mut encoder)?;
        Family {
            name: "sluice_operator_busy",
            help: "Time the stage spent handling batches and watermarks",
            unit: Some(Unit::Seconds),
            kind: MetricType::Counter,
            values: stages
                .iter()
                .map(|(l, n)| (l.clone(), n.node.busy_ns.load(load) as f64 / 1e9))
                .collect(),
            encoder: &counter_f,
        }
        .encode(&mut encoder)?;
        let stage_gauge = |name, help, f: &dyn Fn(&super::NodeStats) -> Option<f64>| Family {
            name,
            help,
            unit: None,
            kind: MetricType::Gauge,
            values: stages
                .iter()
                .filter_map(|(l, n)| f(n).map(|v| (l.clone(), v)))
                .collect(),
            encoder: &gauge,
        };
        stage_gauge(
            "sluice_operator_input_rate",
            "Rows into the stage per second over the last 10 s",
            &|n| Some(n.last_10s.rate),
        )
        .encode(&mut encoder)?;
        stage_gauge(
            "sluice_operator_service_rate",
            "Rows the stage handles per busy second over the last 10 s",
            &|n| n.last_10s.service,
        )
        .encode(&mut encoder)?;
        stage_gauge(
            "sluice_operator_utilisation",
            "Busy time per wall time over the last 10 s",
            &|n| Some(n.last_10s.busy),
        )
        .encode(&mut encoder)?;
        stage_gauge(
            "sluice_operator_queue_depth",
            "Batches waiting in the channel that feeds the stage",
            &|n| n.queue_depth.map(|d| d as f64),
        )
        .encode(&mut encoder)?;
        stage_gauge(
            "sluice_operator_state_rows",
            "Rows of state the stage holds",
            &|n| Some(n.node.state_rows.load(load) as f64),
        )
        .encode(&mut encoder)?;
        stage_gauge(
            "sluice_operator_state_bytes",
            "Bytes of state the stage holds",
            &|n| Some(n.node.state_bytes.load(load) as f64),
        )
        .encode(&mut encoder)?;
        // A join's state per side.
        let by_input: Vec<(Labels, (u64, u64))> = stages
            .iter()
            .flat_map(|(l, n)| {
                let inputs = n.node.input_state();
                let sides = inputs.len();
                inputs.into_iter().enumerate().map(move |(i, size)| {
                    let mut l = l.clone();
                    l.push(("input", super::input_name(sides, i)));
                    (l, size)
                })
            })
            .collect();
        for (name, help, pick) in [
            (
                "sluice_operator_input_state_rows",
                "Rows of a join's state that one input's rows are",
                (|s: &(u64, u64)| s.0) as fn(&(u64, u64)) -> u64,
            ),
            (
                "sluice_operator_input_state_bytes",
                "Bytes of a join's state that one input's rows are",
                |s: &(u64, u64)| s.1,
            ),
        ] {
            Family {
                name,
                help,
                unit: None,
                kind: MetricType::Gauge,
                values: by_input
                    .iter()
                    .map(|(l, s)| (l.clone(), pick(s) as f64))
                    .collect(),
                encoder: &gauge,
            }
            .encode(&mut encoder)?;
        }
        Family {
            name: "sluice_operator_batch_duration",
            help: "Time to handle one batch",
            unit: Some(Unit::Seconds),
            kind: MetricType::Histogram,
            values: stages
                .iter()
                .map(|(l, n)| (l.clone(), Arc::clone(&n.node)))
                .collect(),
            encoder: &|n: &Arc<super::NodeMetrics>, e| n.batch_seconds.encode(e),
        }
        .encode(&mut encoder)?;
        Ok(())
    }
}

/// The exposition text for every pipeline `monitor` knows.
pub fn render(monitor: &Arc<Monitor>) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PipelinesCollector(Arc::clone(monitor))));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
}

/// Serves `GET /metrics` until `shutdown`.
pub async fn serve(listener: TcpListener, monitor: Arc<Monitor>, shutdown: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let monitor = Arc::clone(&monitor);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &monitor).await {
                tracing::debug!(error = %e, "metrics endpoint: request failed");
            }
        });
    }
}

/// Answers one HTTP/1.x request, then closes the connection.
async fn answer(mut stream: TcpStream, monitor: &Arc<Monitor>) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    // Read the request head (the endpoint takes no body).
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buf))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&request);
    let mut parts = head.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") | ("GET", "/") => match render(monitor) {
            Ok(text) => (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(_) => (
                "500 Internal Server Error",
                "text/plain",
                "encoding failed\n".into(),
            ),
        },
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".into()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET /metrics only\n".into(),
        ),
    };
    let mut response = String::with_capacity(body.len() + 160);
    let _ = write!(
        response,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
