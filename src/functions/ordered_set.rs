//! PostgreSQL's ordered-set aggregates DataFusion lacks (it has
//! `percentile_cont`, not these):
//!
//! * `percentile_disc(p) WITHIN GROUP (ORDER BY x)`: the first `x`, in that
//!   order, at or past fraction `p` of the rows (`p` between 0 and 1);
//! * `mode() WITHIN GROUP (ORDER BY x)`: the most frequent `x`, the first
//!   in that order among equally frequent ones.
//!
//! NULL `x` are skipped; no rows (or a NULL `p`) give NULL. `x` may be of
//! any type Arrow can sort (numbers, text, timestamps…) and the result has
//! its type. The plain calls `percentile_disc(x, p)` and `mode(x)` work
//! too (ascending).
//!
//! The state is each distinct value (in Arrow's row format, whose bytes
//! sort as the values do) with its number of rows, so it merges
//! (`state`/`merge_batch`, how Sluice checkpoints) and takes rows back
//! (`retract_batch`, for updating inputs) exactly.
//!
//! Where we differ from PostgreSQL: `p` must be a constant (PostgreSQL
//! allows any expression constant within a group) and cannot be an array
//! of fractions; text sorts by bytes (PostgreSQL's "C" collation).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{exec_err, internal_err, not_impl_err, plan_err, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::{format_state_name, AggregateOrderSensitivity};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};

use super::args::type_list;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PercentileDisc {
    signature: Signature,
}

impl PercentileDisc {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for PercentileDisc {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for PercentileDisc {
    fn name(&self) -> &str {
        "percentile_disc"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value, p] if p.is_numeric() || p.is_null() => Ok(vec![
                sortable("percentile_disc", arg_types, value)?,
                DataType::Float64,
            ]),
            _ => plan_err!(
                "function percentile_disc({}) does not exist; write \
                 percentile_disc(fraction) WITHIN GROUP (ORDER BY value)",
                type_list(arg_types)
            ),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        first_type(arg_types)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        state_fields(&args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let fraction = fraction(&args)?;
        Ok(Box::new(OrderedCounts::new(
            &args,
            self.name(),
            Pick::Percentile(fraction),
        )?))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        // The accumulator orders the values itself: no sort is needed.
        AggregateOrderSensitivity::Insensitive
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Mode {
    signature: Signature,
}

impl Mode {
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for Mode {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for Mode {
    fn name(&self) -> &str {
        "mode"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [value] => Ok(vec![sortable("mode", arg_types, value)?]),
            _ => plan_err!(
                "function mode({}) does not exist; write mode() WITHIN GROUP (ORDER BY value)",
                type_list(arg_types)
            ),
        }
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        first_type(arg_types)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        state_fields(&args)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OrderedCounts::new(
            &args,
            self.name(),
            Pick::Mode,
        )?))
    }

    fn order_sensitivity(&self) -> AggregateOrderSensitivity {
        AggregateOrderSensitivity::Insensitive
    }

    fn supports_within_group_clause(&self) -> bool {
        true
    }
}

/// The ordered value's type, if Arrow's row format can sort it. A NULL
/// literal is taken as a bigint, whose result is NULL.
fn sortable(name: &str, arg_types: &[DataType], value: &DataType) -> Result<DataType> {
    let value = if value.is_null() {
        DataType::Int64
    } else {
        value.clone()
    };
    if RowConverter::supports_fields(&[SortField::new(value.clone())]) {
        Ok(value)
    } else {
        plan_err!(
            "function {name}({}) does not exist: values of type {value} cannot be ordered",
            type_list(arg_types)
        )
    }
}

fn first_type(arg_types: &[DataType]) -> Result<DataType> {
    match arg_types.first() {
        Some(t) => Ok(t.clone()),
        None => internal_err!("ordered-set aggregate without arguments"),
    }
}

fn state_fields(args: &StateFieldsArgs) -> Result<Vec<FieldRef>> {
    let list = |t: DataType| DataType::List(Arc::new(Field::new_list_field(t, true)));
    Ok(vec![
        Arc::new(Field::new(
            format_state_name(args.name, "values"),
            list(args.return_type().clone()),
            true,
        )),
        Arc::new(Field::new(
            format_state_name(args.name, "counts"),
            list(DataType::Int64),
            true,
        )),
    ])
}

/// Argument `index` of aggregate `function`, which must be a constant, as
/// a double (`None` for NULL).
pub(super) fn constant_f64(
    args: &AccumulatorArgs,
    function: &str,
    index: usize,
    what: &str,
) -> Result<Option<f64>> {
    let Some(expr) = args.exprs.get(index) else {
        return internal_err!("{function} without its {what}");
    };
    // A constant evaluates without any input column.
    let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
    let value = match expr.evaluate(&empty) {
        Ok(ColumnarValue::Scalar(value)) => value,
        _ => return plan_err!("the {what} of {function} must be a constant"),
    };
    match value.cast_to(&DataType::Float64)? {
        ScalarValue::Float64(v) => Ok(v),
        other => internal_err!("{what} cast to a double is {}", other.data_type()),
    }
}

/// `percentile_disc`'s fraction: a constant between 0 and 1, or NULL.
fn fraction(args: &AccumulatorArgs) -> Result<Option<f64>> {
    match constant_f64(args, "percentile_disc", 1, "fraction")? {
        Some(p) if !(0.0..=1.0).contains(&p) => {
            exec_err!("percentile value {p} is not between 0 and 1")
        }
        p => Ok(p),
    }
}

#[derive(Debug, Clone, Copy)]
enum Pick {
    /// `percentile_disc`'s fraction (NULL: the result is NULL).
    Percentile(Option<f64>),
    Mode,
}

/// Each distinct value, row-encoded so the map's order is the values'
/// order, with its number of rows.
#[derive(Debug)]
struct OrderedCounts {
    converter: RowConverter,
    counts: BTreeMap<Box<[u8]>, i64>,
    /// Rows counted: the sum of `counts`.
    total: i64,
    /// Bytes of the keys in `counts`, for `size`.
    key_bytes: usize,
    value_type: DataType,
    /// `WITHIN GROUP (ORDER BY x DESC)`: pick from the largest value down.
    descending: bool,
    pick: Pick,
}

impl OrderedCounts {
    fn new(args: &AccumulatorArgs, function: &str, pick: Pick) -> Result<Self> {
        if args.is_distinct {
            return not_impl_err!("DISTINCT is not supported in {function}");
        }
        let value_type = args.return_type().clone();
        Ok(Self {
            converter: RowConverter::new(vec![SortField::new(value_type.clone())])?,
            counts: BTreeMap::new(),
            total: 0,
            key_bytes: 0,
            value_type,
            descending: args
                .order_bys
                .first()
                .is_some_and(|sort| sort.options.descending),
            pick,
        })
    }

    /// Adds `count(i)` rows of the value at each non-NULL row `i` of
    /// `values` (a negative count takes rows back).
    fn add(&mut self, values: &ArrayRef, count: impl Fn(usize) -> i64) -> Result<()> {
        let rows = self.converter.convert_columns(&[Arc::clone(values)])?;
        for i in 0..values.len() {
            if values.is_null(i) {
                continue;
            }
            let n = count(i);
            let key = rows.row(i);
            match self.counts.get_mut(key.as_ref()) {
                Some(held) => {
                    *held += n;
                    if *held <= 0 {
                        if *held < 0 {
                            return internal_err!("more rows taken back than added");
                        }
                        self.counts.remove(key.as_ref());
                        self.key_bytes -= key.as_ref().len();
                    }
                }
                None if n > 0 => {
                    self.key_bytes += key.as_ref().len();
                    self.counts.insert(key.as_ref().into(), n);
                }
                None if n == 0 => {}
                None => return internal_err!("a value taken back was never added"),
            }
            self.total += n;
        }
        Ok(())
    }

    /// The values and their counts in the aggregate's order.
    fn in_order(&self) -> Box<dyn Iterator<Item = (&Box<[u8]>, &i64)> + '_> {
        if self.descending {
            Box::new(self.counts.iter().rev())
        } else {
            Box::new(self.counts.iter())
        }
    }

    /// The `k`-th row (from 0) in the aggregate's order.
    fn nth(&self, k: i64) -> Option<&[u8]> {
        let mut seen = 0;
        self.in_order().find_map(|(key, n)| {
            seen += n;
            (seen > k).then_some(key.as_ref())
        })
    }

    /// The most frequent value, the first in the aggregate's order on ties.
    fn mode(&self) -> Option<&[u8]> {
        let mut best: Option<(&[u8], i64)> = None;
        for (key, &n) in self.in_order() {
            if best.is_none_or(|(_, most)| n > most) {
                best = Some((key.as_ref(), n));
            }
        }
        best.map(|(key, _)| key)
    }
}

impl Accumulator for OrderedCounts {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(values) => self.add(values, |_| 1),
            None => internal_err!("ordered-set aggregate without its value"),
        }
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        match values.first() {
            Some(values) => self.add(values, |_| -1),
            None => internal_err!("ordered-set aggregate without its value"),
        }
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let key = match self.pick {
            _ if self.total == 0 => None,
            Pick::Percentile(None) => None,
            // PostgreSQL: row ceil(p * n), counting from 1; p = 0 is row 1.
            Pick::Percentile(Some(p)) => {
                let row = ((p * self.total as f64).ceil() as i64).max(1);
                self.nth(row - 1)
            }
            Pick::Mode => self.mode(),
        };
        let Some(key) = key else {
            return ScalarValue::try_from(&self.value_type);
        };
        let parser = self.converter.parser();
        let columns = self.converter.convert_rows([parser.parse(key)])?;
        match columns.first() {
            Some(column) => ScalarValue::try_from_array(column, 0),
            None => internal_err!("row converter returned no column"),
        }
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let parser = self.converter.parser();
        let values = self
            .converter
            .convert_rows(self.counts.keys().map(|k| parser.parse(k)))?
            .pop()
            .ok_or_else(|| DataFusionError::Internal("row converter returned no column".into()))?;
        let counts: ArrayRef =
            Arc::new(Int64Array::from_iter_values(self.counts.values().copied()));
        Ok(vec![
            SingleRowListArrayBuilder::new(values).build_list_scalar(),
            SingleRowListArrayBuilder::new(counts).build_list_scalar(),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [values, counts] = states else {
            return internal_err!("expected 2 state columns, got {}", states.len());
        };
        let (Some(values), Some(counts)) =
            (values.as_list_opt::<i32>(), counts.as_list_opt::<i32>())
        else {
            return internal_err!("ordered-set aggregate state is not two lists");
        };
        for i in 0..values.len() {
            if values.is_null(i) || counts.is_null(i) {
                continue;
            }
            let counts = counts.value(i);
            let Some(counts) = counts.as_primitive_opt::<Int64Type>() else {
                return internal_err!("ordered-set aggregate counts are not bigints");
            };
            self.add(&values.value(i), |j| counts.value(j))?;
        }
        Ok(())
    }

    fn size(&self) -> usize {
        // A B-tree entry: the boxed key, its count and about as much again
        // of node overhead.
        let per_entry = 2 * (size_of::<Box<[u8]>>() + size_of::<i64>());
        size_of_val(self) + self.converter.size() + self.key_bytes + self.counts.len() * per_entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::StringArray;

    fn counts(pick: Pick, descending: bool, value_type: DataType) -> Result<OrderedCounts> {
        Ok(OrderedCounts {
            converter: RowConverter::new(vec![SortField::new(value_type.clone())])?,
            counts: BTreeMap::new(),
            total: 0,
            key_bytes: 0,
            value_type,
            descending,
            pick,
        })
    }

    fn ints(values: &[Option<i64>]) -> ArrayRef {
        Arc::new(Int64Array::from(values.to_vec()))
    }

    fn percentile(p: f64, descending: bool, values: &[Option<i64>]) -> Result<ScalarValue> {
        let mut acc = counts(Pick::Percentile(Some(p)), descending, DataType::Int64)?;
        acc.update_batch(&[ints(values)])?;
        acc.evaluate()
    }

    /// PostgreSQL 15 over (1), (2), (3), (4), (NULL).
    #[test]
    fn percentile_disc_as_postgres() -> Result<()> {
        let v = [Some(1), Some(2), Some(3), Some(4), None];
        for (p, descending, want) in [
            (0.5, false, 2),
            (0.0, false, 1),
            (1.0, false, 4),
            (0.25, false, 1),
            (0.26, false, 2),
            (0.25, true, 4),
            (0.5, true, 3),
        ] {
            assert_eq!(
                percentile(p, descending, &v)?,
                ScalarValue::Int64(Some(want)),
                "p {p} desc {descending}"
            );
        }
        assert_eq!(percentile(0.5, false, &[None])?, ScalarValue::Int64(None));
        Ok(())
    }

    /// PostgreSQL 15 over (3), (1), (3), (1), (2): 1 ascending, 3 descending.
    #[test]
    fn mode_as_postgres() -> Result<()> {
        for (descending, want) in [(false, 1), (true, 3)] {
            let mut acc = counts(Pick::Mode, descending, DataType::Int64)?;
            acc.update_batch(&[ints(&[Some(3), Some(1), Some(3), Some(1), Some(2)])])?;
            assert_eq!(acc.evaluate()?, ScalarValue::Int64(Some(want)));
        }
        let mut acc = counts(Pick::Mode, false, DataType::Utf8)?;
        let text: ArrayRef = Arc::new(StringArray::from(vec!["b", "a", "b"]));
        acc.update_batch(&[text])?;
        assert_eq!(acc.evaluate()?, ScalarValue::Utf8(Some("b".into())));
        Ok(())
    }

    /// A checkpoint (`state`) restored into a fresh accumulator
    /// (`merge_batch`) answers as the original, and both take rows back.
    #[test]
    fn state_merges_and_rows_retract() -> Result<()> {
        let mut original = counts(Pick::Mode, false, DataType::Int64)?;
        original.update_batch(&[ints(&[Some(5), Some(7), Some(7), None])])?;
        let state = original
            .state()?
            .iter()
            .map(|s| s.to_array())
            .collect::<Result<Vec<_>>>()?;
        let mut restored = counts(Pick::Mode, false, DataType::Int64)?;
        restored.merge_batch(&state)?;
        restored.update_batch(&[ints(&[Some(5)])])?;
        // 5 and 7 twice each: the first in order wins.
        assert_eq!(restored.evaluate()?, ScalarValue::Int64(Some(5)));
        restored.retract_batch(&[ints(&[Some(5), Some(5)])])?;
        assert_eq!(restored.evaluate()?, ScalarValue::Int64(Some(7)));
        restored.retract_batch(&[ints(&[Some(7), Some(7)])])?;
        assert_eq!(restored.evaluate()?, ScalarValue::Int64(None));
        assert_eq!((restored.total, restored.key_bytes), (0, 0));
        assert!(restored.retract_batch(&[ints(&[Some(7)])]).is_err());
        Ok(())
    }
}
