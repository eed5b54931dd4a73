//! Row-by-row access to a scalar function's arguments without expanding a
//! constant into an array: the functions here take mostly constant
//! patterns, delimiters and zones beside one column of values.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::ColumnarValue;

use super::{scalar_str, string_array};

/// How many rows a call computes, and whether its result is a scalar (every
/// argument was one).
pub(super) fn shape(args: &[ColumnarValue], number_rows: usize) -> (usize, bool) {
    let scalar = args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)));
    (if scalar { 1 } else { number_rows }, scalar)
}

/// The call's result: `out` as it is, or its only row when every argument
/// was a scalar.
pub(super) fn finish(out: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
    } else {
        Ok(ColumnarValue::Array(out))
    }
}

/// A text argument.
pub(super) enum TextArg<'a> {
    Constant(Option<&'a str>),
    Column(StringArray),
}

impl<'a> TextArg<'a> {
    pub(super) fn new(arg: &'a ColumnarValue) -> Result<Self> {
        Ok(match arg {
            ColumnarValue::Scalar(value) => TextArg::Constant(scalar_str(value)?),
            ColumnarValue::Array(array) => TextArg::Column(string_array(array)?),
        })
    }

    /// The value at `row`, `None` if NULL.
    pub(super) fn get(&self, row: usize) -> Option<&str> {
        match self {
            TextArg::Constant(value) => *value,
            TextArg::Column(array) => array.is_valid(row).then(|| array.value(row)),
        }
    }
}

/// A numeric argument, cast to `T` (the type the function coerced it to).
pub(super) enum NumArg<T: ArrowPrimitiveType> {
    Constant(Option<T::Native>),
    Column(PrimitiveArray<T>),
}

impl<T: ArrowPrimitiveType> NumArg<T> {
    pub(super) fn new(arg: &ColumnarValue) -> Result<Self> {
        Ok(match arg {
            ColumnarValue::Scalar(value) => {
                let array = cast(&value.to_array()?, &T::DATA_TYPE)?;
                let array = array.as_primitive::<T>();
                NumArg::Constant(array.is_valid(0).then(|| array.value(0)))
            }
            ColumnarValue::Array(array) => {
                NumArg::Column(cast(array, &T::DATA_TYPE)?.as_primitive::<T>().clone())
            }
        })
    }

    /// The value at `row`, `None` if NULL.
    pub(super) fn get(&self, row: usize) -> Option<T::Native> {
        match self {
            NumArg::Constant(value) => *value,
            NumArg::Column(array) => array.is_valid(row).then(|| array.value(row)),
        }
    }
}

/// Argument types as PostgreSQL lists them in "function f(…) does not
/// exist".
pub(super) fn type_list(types: &[DataType]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
