//! `lpad`, `rpad` and `repeat` with PostgreSQL's bound on what they may
//! build: asked for more than [`MAX_TEXT_BYTES`], they fail with
//! "requested length too large" (54000) before allocating, instead of
//! holding gigabytes (`lpad('', 2147483647, 'x')`). Otherwise DataFusion's
//! own functions do the work.

use crate::functions::error::FunctionError;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The longest text these functions build (PostgreSQL's limit is 1 GB;
/// one ad-hoc value should not come near it).
pub const MAX_TEXT_BYTES: i64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    /// `lpad(s, n[, fill])`, `rpad(…)`: n characters (4 bytes at most each).
    Pad,
    /// `repeat(s, n)`: n times s.
    Repeat,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LengthLimited {
    inner: Arc<ScalarUDF>,
    kind: Kind,
}

/// The bounded versions of DataFusion's lpad, rpad and repeat.
pub fn udfs() -> Vec<ScalarUDF> {
    use datafusion::functions::{string, unicode};
    [
        (unicode::lpad(), Kind::Pad),
        (unicode::rpad(), Kind::Pad),
        (string::repeat(), Kind::Repeat),
    ]
    .into_iter()
    .map(|(inner, kind)| ScalarUDF::new_from_impl(LengthLimited { inner, kind }))
    .collect()
}

fn too_large() -> DataFusionError {
    DataFusionError::from(FunctionError::new(
        "54000",
        format!(
            "requested length too large (the limit is {} MB)",
            MAX_TEXT_BYTES >> 20
        ),
    ))
}

impl LengthLimited {
    /// Fails if any row asks for more than the limit.
    fn check(&self, args: &[ColumnarValue], rows: usize) -> Result<()> {
        let Some(count) = args.get(1) else {
            return Ok(());
        };
        let counts = cast(&count.to_array(rows)?, &DataType::Int64)?;
        let counts = counts.as_primitive::<Int64Type>();
        let max_count = counts.iter().flatten().max().unwrap_or(0);
        if max_count <= 0 {
            return Ok(());
        }
        let bytes = match self.kind {
            Kind::Pad => max_count.saturating_mul(4),
            Kind::Repeat => {
                let texts = cast(&args[0].to_array(rows)?, &DataType::Utf8)?;
                let texts = texts.as_string::<i32>();
                (0..texts.len())
                    .filter(|&i| !texts.is_null(i) && !counts.is_null(i))
                    .map(|i| (texts.value(i).len() as i64).saturating_mul(counts.value(i)))
                    .max()
                    .unwrap_or(0)
            }
        };
        if bytes > MAX_TEXT_BYTES {
            return Err(too_large());
        }
        Ok(())
    }
}

impl ScalarUDFImpl for LengthLimited {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check(&args.args, args.number_rows)?;
        self.inner.invoke_with_args(args)
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.inner().coerce_types(args)
    }
}
