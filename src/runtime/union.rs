//! `UNION ALL`: passes every input's rows on under the union's columns.
//! Which watermark it is given (the least of its inputs') is the graph's
//! business (`graph.rs`); the rows need only their schema's names.

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::operator::Operator;
use crate::error::Result;
use crate::stream::StreamBatch;

pub struct UnionOperator {
    schema: SchemaRef,
}

impl UnionOperator {
    pub fn new(schema: SchemaRef) -> Self {
        UnionOperator { schema }
    }
}

impl Operator for UnionOperator {
    fn name(&self) -> &'static str {
        "union"
    }

    fn detail(&self) -> String {
        "rows of every input; watermark = the least of its inputs'".into()
    }

    fn process_batch(&mut self, batch: StreamBatch, out: &mut Vec<StreamBatch>) -> Result<()> {
        let data = if batch.data.schema() == self.schema {
            batch.data
        } else {
            RecordBatch::try_new(self.schema.clone(), batch.data.columns().to_vec())?
        };
        out.push(StreamBatch { data, ..batch });
        Ok(())
    }
}
