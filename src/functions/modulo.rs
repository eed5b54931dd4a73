//! PostgreSQL's `mod(a, b)`: the remainder of `a / b`, with the sign of
//! `a`. DataFusion has the `%` operator but no `mod` function.
//!
//! Both arguments take their common numeric type (as `%` does: `mod(int,
//! bigint)` is `bigint`, a decimal with the larger scale), which is also
//! the result type. A zero divisor is the error `division by zero`
//! (SQLSTATE 22012), for every type: PostgreSQL has no floating-point
//! `mod`, and a NaN would hide the mistake. `mod(i64::MIN, -1)` is 0, as
//! in PostgreSQL, not an overflow.

use crate::functions::error::FunctionError;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::compute::try_binary;
use datafusion::arrow::datatypes::{
    ArrowNativeTypeOp, ArrowPrimitiveType, DataType, Decimal128Type, Decimal256Type, Decimal32Type,
    Decimal64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{exec_err, internal_err, plan_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::type_coercion::binary::binary_numeric_coercion;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::args::{finish, shape, type_list};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Mod {
    signature: Signature,
}

impl Mod {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for Mod {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for Mod {
    fn name(&self) -> &str {
        "mod"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types.first() {
            Some(t) => Ok(t.clone()),
            None => internal_err!("mod without arguments"),
        }
    }

    fn is_strict(&self) -> bool {
        true
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let common = match arg_types {
            [DataType::Null, DataType::Null] => Some(DataType::Int64),
            [DataType::Null, t] | [t, DataType::Null] if t.is_numeric() => Some(t.clone()),
            [a, b] => binary_numeric_coercion(a, b),
            _ => None,
        };
        match common {
            Some(t) => Ok(vec![t.clone(), t]),
            None => plan_err!(
                "function mod({}) does not exist; it takes two numbers",
                type_list(arg_types)
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (rows, scalar) = shape(&args.args, args.number_rows);
        let [a, b] = args.args.as_slice() else {
            return internal_err!("mod takes 2 arguments, got {}", args.args.len());
        };
        let (a, b) = (a.to_array(rows)?, b.to_array(rows)?);
        finish(remainder(&a, &b)?, scalar)
    }
}

/// `a % b` row by row; both arrays have the same numeric type.
fn remainder(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef> {
    match a.data_type() {
        DataType::Int8 => rem::<Int8Type>(a, b),
        DataType::Int16 => rem::<Int16Type>(a, b),
        DataType::Int32 => rem::<Int32Type>(a, b),
        DataType::Int64 => rem::<Int64Type>(a, b),
        DataType::UInt8 => rem::<UInt8Type>(a, b),
        DataType::UInt16 => rem::<UInt16Type>(a, b),
        DataType::UInt32 => rem::<UInt32Type>(a, b),
        DataType::UInt64 => rem::<UInt64Type>(a, b),
        DataType::Float16 => rem::<Float16Type>(a, b),
        DataType::Float32 => rem::<Float32Type>(a, b),
        DataType::Float64 => rem::<Float64Type>(a, b),
        // Both sides have the same scale, so the remainder of the raw
        // integers is the remainder of the values, at that scale.
        DataType::Decimal32(..) => rem::<Decimal32Type>(a, b),
        DataType::Decimal64(..) => rem::<Decimal64Type>(a, b),
        DataType::Decimal128(..) => rem::<Decimal128Type>(a, b),
        DataType::Decimal256(..) => rem::<Decimal256Type>(a, b),
        other => exec_err!("mod cannot take {other}"),
    }
}

fn rem<T: ArrowPrimitiveType>(a: &ArrayRef, b: &ArrayRef) -> Result<ArrayRef>
where
    T::Native: ArrowNativeTypeOp,
{
    let (a, b) = (a.as_primitive::<T>(), b.as_primitive::<T>());
    // `try_binary` skips rows where either side is NULL, so `mod(NULL, 0)`
    // is NULL, as in PostgreSQL (the function is strict).
    let out: PrimitiveArray<T> = try_binary(a, b, |x: T::Native, y: T::Native| {
        if y.is_zero() {
            Err(ArrowError::DivideByZero)
        } else {
            // Wrapping: only `MIN % -1` wraps, and its remainder is 0.
            Ok(x.mod_wrapping(y))
        }
    })
    .map_err(|e| match e {
        ArrowError::DivideByZero => {
            DataFusionError::from(FunctionError::new("22012", "division by zero"))
        }
        other => other.into(),
    })?;
    Ok(Arc::new(out.with_data_type(a.data_type().clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Float64Array, Int64Array};

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    /// PostgreSQL 15: mod(7, 3), mod(-7, 3), mod(7, -3), mod(-9223372036854775808, -1).
    #[test]
    fn integers_as_postgres() -> Result<()> {
        let out = remainder(
            &ints(&[Some(7), Some(-7), Some(7), Some(i64::MIN), None, Some(5)]),
            &ints(&[Some(3), Some(3), Some(-3), Some(-1), Some(0), None]),
        )?;
        assert_eq!(
            out.as_primitive::<Int64Type>(),
            &Int64Array::from(vec![Some(1), Some(-1), Some(1), Some(0), None, None])
        );
        Ok(())
    }

    #[test]
    fn division_by_zero() {
        let got = remainder(&ints(&[Some(7)]), &ints(&[Some(0)]));
        assert!(
            matches!(&got, Err(e) if e.to_string() == "External error: division by zero"),
            "{got:?}"
        );
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![7.5]));
        let zero: ArrayRef = Arc::new(Float64Array::from(vec![0.0]));
        assert!(remainder(&floats, &zero).is_err());
    }

    /// PostgreSQL 15: mod(10.5, 3) is 1.5.
    #[test]
    fn decimals_keep_their_scale() -> Result<()> {
        let decimal = |v: i128| -> Result<ArrayRef> {
            Ok(Arc::new(
                Decimal128Array::from(vec![v]).with_precision_and_scale(10, 1)?,
            ))
        };
        let out = remainder(&decimal(105)?, &decimal(30)?)?;
        assert_eq!(out.data_type(), &DataType::Decimal128(10, 1));
        assert_eq!(out.as_primitive::<Decimal128Type>().value(0), 15);
        Ok(())
    }

    #[test]
    fn coercion_is_the_common_type() -> Result<()> {
        let m = Mod::new();
        assert_eq!(
            m.coerce_types(&[DataType::Int32, DataType::Int64])?,
            vec![DataType::Int64, DataType::Int64]
        );
        assert_eq!(
            m.coerce_types(&[DataType::Int16, DataType::Int16])?,
            vec![DataType::Int16, DataType::Int16]
        );
        assert!(m.coerce_types(&[DataType::Utf8, DataType::Int64]).is_err());
        Ok(())
    }
}
