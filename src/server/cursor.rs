//! Cursors: `DECLARE c CURSOR FOR …` then `FETCH n FROM c`. A cursor over
//! SUBSCRIBE waits for changes as they happen; one over a SELECT holds the
//! query's result (taken when declared, as PostgreSQL's snapshot is) and
//! hands it out `n` rows at a time, as psql's FETCH_COUNT and psycopg's
//! named cursors read it.

use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;

use super::subscribe::Subscription;
use crate::error::Result;

pub enum Cursor {
    Subscribe(Box<Subscription>),
    Rows { rows: RecordBatch, next: usize },
}

impl Cursor {
    pub fn rows(rows: RecordBatch) -> Cursor {
        Cursor::Rows { rows, next: 0 }
    }

    pub fn schema(&self) -> SchemaRef {
        match self {
            Cursor::Subscribe(s) => s.schema(),
            Cursor::Rows { rows, .. } => rows.schema(),
        }
    }

    /// Up to `count` rows; a subscription waits for the first at most
    /// `timeout`.
    pub async fn fetch(&mut self, count: usize, timeout: Option<Duration>) -> Result<RecordBatch> {
        match self {
            Cursor::Subscribe(s) => s.fetch(count, timeout).await,
            Cursor::Rows { rows, next } => {
                let take = count.min(rows.num_rows() - *next);
                let out = rows.slice(*next, take);
                *next += take;
                Ok(out)
            }
        }
    }
}
