//! `proctime()`: the processing time, as Flink's `PROCTIME()` and
//! RisingWave's `proctime()`: the moment a row is computed, as a
//! `timestamptz` in milliseconds. Unlike `now()` (the statement's start,
//! fixed when it is planned), it is read again for every batch, so in a
//! continuous query each row gets the time it went through.
//!
//! As a source column (`p_time AS PROCTIME()`) it is filled when a record
//! is decoded, so windows and watermarks can use it (see `crate::format`).

use std::sync::Arc;

use datafusion::arrow::array::TimestampMillisecondArray;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

const ZONE: &str = "+00:00";

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ProcTime {
    signature: Signature,
}

impl ProcTime {
    pub fn new() -> Self {
        Self {
            signature: Signature::nullary(Volatility::Volatile),
        }
    }
}

impl Default for ProcTime {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ProcTime {
    fn name(&self) -> &str {
        "proctime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(
            TimeUnit::Millisecond,
            Some(ZONE.into()),
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let now = chrono::Utc::now().timestamp_millis();
        if args.number_rows <= 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::TimestampMillisecond(
                Some(now),
                Some(ZONE.into()),
            )));
        }
        let array =
            TimestampMillisecondArray::from_value(now, args.number_rows).with_timezone(ZONE);
        Ok(ColumnarValue::Array(Arc::new(array)))
    }
}
