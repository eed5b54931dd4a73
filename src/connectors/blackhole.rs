//! `blackhole` sink: takes every row and keeps none. For benchmarks and for
//! trying a query's throughput without a destination (Flink and RisingWave
//! have the same); the pipeline figures still count its rows.

use std::sync::Arc;

use async_trait::async_trait;

use super::{Connector, SinkConnector, SinkSchema, SinkWriter};
use crate::error::Result;
use crate::sql::Options;
use crate::stream::StreamBatch;

pub const CONNECTOR: Connector = Connector {
    name: "blackhole",
    source: None,
    source_options: &[],
    source_decodes: false,
    metadata: &[],
    columns: None,
    sink: Some(sink_factory),
    sink_options: &[],
};

#[derive(Debug)]
struct Blackhole;

fn sink_factory(_options: &mut Options) -> Result<Arc<dyn SinkConnector>> {
    Ok(Arc::new(Blackhole))
}

#[async_trait]
impl SinkConnector for Blackhole {
    fn kind(&self) -> &'static str {
        "blackhole"
    }

    async fn open(&self, _schema: &SinkSchema) -> Result<Box<dyn SinkWriter>> {
        Ok(Box::new(Blackhole))
    }
}

#[async_trait]
impl SinkWriter for Blackhole {
    async fn write(&mut self, _batch: &StreamBatch) -> Result<u64> {
        Ok(0)
    }
}
