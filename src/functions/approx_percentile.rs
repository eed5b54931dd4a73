//! `approx_percentile`, the name RisingWave and Spark give DataFusion's
//! `approx_percentile_cont` (a t-digest): RisingWave's
//! `approx_percentile(p [, relative_error]) WITHIN GROUP (ORDER BY x)` and
//! Spark's `approx_percentile(x, p [, accuracy])`. The result is a double,
//! as in both.
//!
//! A plain alias would not do: the third argument is DataFusion's number
//! of t-digest centroids, an integer. An integer third argument (Spark's
//! `accuracy`, larger is more exact there too) is passed on as that; a
//! fractional one is RisingWave's relative error, checked to lie between 0
//! and 1 and otherwise not used: the t-digest keeps DataFusion's default
//! size (100 centroids), whose error is not bounded the way RisingWave
//! bounds it.

use crate::functions::error::FunctionError;
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{exec_err, plan_err};
use datafusion::error::Result;
use datafusion::functions_aggregate::approx_percentile_cont::ApproxPercentileCont;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

use super::args::type_list;
use super::ordered_set::constant_f64;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ApproxPercentile {
    signature: Signature,
    datafusion: ApproxPercentileCont,
}

impl ApproxPercentile {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
            datafusion: ApproxPercentileCont::new(),
        }
    }
}

impl Default for ApproxPercentile {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether `t` can be a number argument (NULL included).
fn number(t: &DataType) -> bool {
    t.is_numeric() || t.is_null()
}

impl AggregateUDFImpl for ApproxPercentile {
    fn name(&self) -> &str {
        "approx_percentile"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let third = match arg_types {
            [x, p] if number(x) && number(p) => None,
            [x, p, third] if number(x) && number(p) && third.is_integer() => Some(DataType::Int64),
            [x, p, third] if number(x) && number(p) && number(third) => Some(DataType::Float64),
            _ => {
                return plan_err!(
                    "function approx_percentile({}) does not exist; write \
                     approx_percentile(fraction [, relative_error]) WITHIN GROUP (ORDER BY value)",
                    type_list(arg_types)
                )
            }
        };
        let mut types = vec![DataType::Float64, DataType::Float64];
        types.extend(third);
        Ok(types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        self.datafusion.state_fields(args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let relative_error =
            args.expr_fields.len() == 3 && args.expr_fields[2].data_type() == &DataType::Float64;
        if !relative_error {
            return self.datafusion.accumulator(args);
        }
        match constant_f64(&args, self.name(), 2, "relative error")? {
            Some(e) if e > 0.0 && e < 1.0 => {}
            Some(e) => {
                return Err(FunctionError::new(
                    "22003",
                    format!("relative error {e} is not between 0 and 1"),
                )
                .into())
            }
            None => return exec_err!("the relative error of approx_percentile must not be NULL"),
        }
        self.datafusion.accumulator(AccumulatorArgs {
            exprs: &args.exprs[..2],
            expr_fields: &args.expr_fields[..2],
            ..args
        })
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}
