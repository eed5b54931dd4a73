//! The helpers operators use to write their aggregate state (group keys,
//! accumulator states) as Arrow columns in a checkpoint's
//! [`StateSnapshot`] (`crate::snapshot`) and read it back.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_plan::aggregates::group_values::GroupValues;

use crate::error::Result;

pub use crate::snapshot::{damaged, to_meta, Batches, StateSnapshot};

// Aggregate state as Arrow columns, shared by the aggregate operators.
// Intermediate states (`Accumulator::state`) are what DataFusion merges
// across partitions, so loading them with `merge_batch` into fresh
// accumulators gives the same results as the originals.

/// Accumulator states `[call][field]`: per aggregate call, one column per
/// field of its intermediate state, one row per group (or session). In a
/// batch, column `"{call}.{field}"`; with no rows there are no columns.
pub type StateColumns = Vec<Vec<ArrayRef>>;

/// The intermediate states of `rows` (each one group's accumulators, one per
/// aggregate call). `Accumulator::state` may consume what it returns, so
/// each accumulator is replaced by a fresh one (`fresh(call)`) that merged
/// it: what the operator emits later does not depend on snapshots taken.
pub fn take_states<'a>(
    rows: impl Iterator<Item = &'a mut Vec<Box<dyn Accumulator>>>,
    calls: usize,
    fresh: impl Fn(usize) -> Result<Box<dyn Accumulator>>,
) -> Result<StateColumns> {
    // [call][field][row]
    let mut scalars: Vec<Vec<Vec<ScalarValue>>> = vec![Vec::new(); calls];
    for accs in rows {
        for (call, acc) in accs.iter_mut().enumerate() {
            let state = acc.state()?;
            let arrays = state
                .iter()
                .map(|v| v.to_array())
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let mut copy = fresh(call)?;
            copy.merge_batch(&arrays)?;
            *acc = copy;
            let fields = &mut scalars[call];
            fields.resize_with(state.len(), Vec::new);
            for (field, value) in fields.iter_mut().zip(state) {
                field.push(value);
            }
        }
    }
    scalars
        .into_iter()
        .map(|fields| {
            fields
                .into_iter()
                .map(|values| Ok(ScalarValue::iter_to_array(values)?))
                .collect()
        })
        .collect()
}

/// Loads row `row` of `states` into `accs` (fresh, one per call).
pub fn merge_states(
    states: &StateColumns,
    row: usize,
    accs: &mut [Box<dyn Accumulator>],
) -> Result<()> {
    if states.len() != accs.len() {
        return Err(damaged("aggregate state columns"));
    }
    for (acc, fields) in accs.iter_mut().zip(states) {
        let slices: Vec<ArrayRef> = fields.iter().map(|c| c.slice(row, 1)).collect();
        acc.merge_batch(&slices)?;
    }
    Ok(())
}

/// The intermediate states of the first `groups` groups of `accs` (one
/// `GroupsAccumulator` per call), leaving them as they were: `state` drains,
/// so what it returns is merged straight back.
pub fn keep_groups_states(
    accs: &mut [Box<dyn GroupsAccumulator>],
    groups: usize,
) -> Result<StateColumns> {
    let ids: Vec<usize> = (0..groups).collect();
    accs.iter_mut()
        .map(|acc| {
            let state = acc.state(EmitTo::All)?;
            acc.merge_batch(&state, &ids, groups)?;
            Ok(state)
        })
        .collect()
}

/// Every group's key columns, in group order, leaving the table as it was
/// (`emit` drains; interning the keys again gives them the same ids).
/// `clear_shrink` in between, as DataFusion does after emitting all: the
/// multi-column table keeps its hash index through `emit(All)`, and
/// interning into it again would look up groups that are gone.
pub fn keep_group_keys(groups: &mut dyn GroupValues) -> Result<Vec<ArrayRef>> {
    let n = groups.len();
    let keys = groups.emit(EmitTo::All)?;
    groups.clear_shrink(n);
    let mut ids = Vec::with_capacity(n);
    groups.intern(&keys, &mut ids)?;
    Ok(keys)
}

/// Interns the keys [`keep_group_keys`] returned into a fresh table: they
/// must get ids `0..n` again.
pub fn intern_group_keys(groups: &mut dyn GroupValues, keys: &RecordBatch) -> Result<()> {
    let mut ids = Vec::with_capacity(keys.num_rows());
    groups.intern(keys.columns(), &mut ids)?;
    if ids.iter().enumerate().any(|(i, &id)| i != id) || groups.len() != keys.num_rows() {
        return Err(damaged("group keys repeat"));
    }
    Ok(())
}

/// A batch of named state columns (all nullable) and `states` after them.
pub fn state_batch(
    mut columns: Vec<(String, ArrayRef)>,
    states: StateColumns,
    rows: usize,
) -> Result<RecordBatch> {
    for (call, fields) in states.into_iter().enumerate() {
        for (field, array) in fields.into_iter().enumerate() {
            columns.push((format!("{call}.{field}"), array));
        }
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, a)| Field::new(name, a.data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns.into_iter().map(|(_, a)| a).collect(),
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// The accumulator states of a [`state_batch`] with `calls` aggregate calls.
pub fn states_of(batch: &RecordBatch, calls: usize) -> Result<StateColumns> {
    let mut states: StateColumns = vec![Vec::new(); calls];
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let Some((call, _)) = field.name().split_once('.') else {
            continue;
        };
        let call: usize = call.parse().map_err(|_| damaged("state column name"))?;
        states
            .get_mut(call)
            .ok_or_else(|| damaged("state of an unknown aggregate call"))?
            .push(Arc::clone(column));
    }
    // Every accumulator's state has a field: rows without one would be
    // merged from nothing (and DataFusion's accumulators index into it).
    if batch.num_rows() > 0 && states.iter().any(Vec::is_empty) {
        return Err(damaged("an aggregate call without its state"));
    }
    Ok(states)
}

/// Batches of one kind of state from several instances as one, in order.
/// An instance with no rows may lack columns the others have (accumulator
/// states come from its rows), so only batches with rows are joined.
pub fn concat_rows(batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let mut with_rows: Vec<RecordBatch> = batches
        .iter()
        .filter(|b| b.num_rows() > 0)
        .cloned()
        .collect();
    match with_rows.len() {
        0 => batches
            .into_iter()
            .next()
            .ok_or_else(|| damaged("no state to join")),
        1 => Ok(with_rows.remove(0)),
        _ => {
            let schema = with_rows[0].schema();
            if with_rows.iter().any(|b| b.schema() != schema) {
                return Err(damaged("instances' states of different shapes"));
            }
            Ok(datafusion::arrow::compute::concat_batches(
                &schema, &with_rows,
            )?)
        }
    }
}

/// A named column of a [`state_batch`], as its array type.
pub fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| damaged(&format!("column {name}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn round_trips_batches_of_different_schemas_and_names_damage() {
        let a = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("k", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec![Some("x"), None]))],
        )
        .unwrap();
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)])),
            vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
        )
        .unwrap();
        let s = StateSnapshot::new(
            serde_json::json!({"watermark": 5}),
            vec![a.clone(), b.clone()],
        );
        let bytes = s.encode().unwrap();
        let back = StateSnapshot::decode(&bytes).unwrap();
        assert_eq!(back.meta["watermark"], 5);
        assert_eq!(back.batches, vec![a, b]);
        let err = StateSnapshot::decode(&bytes[..bytes.len() - 3])
            .unwrap_err()
            .to_string();
        assert!(err.contains("damaged"), "{err}");
    }
}
