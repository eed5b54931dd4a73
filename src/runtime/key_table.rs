//! Group key tables: a compact one for a single integer-like key column,
//! DataFusion's `GroupValues` for everything else.
//!
//! Window state is mostly key tables: a count per auction holds 16 bytes of
//! raw state (the key and the count), and DataFusion's
//! `GroupValuesPrimitive` adds a 16-byte `(group, hash)` slot per entry of a
//! power-of-two table kept at most 7/8 full, plus its control bytes: 18–37
//! bytes of table per group on top of the key itself. [`IntKeys`] keeps only
//! the group number (4 bytes) in each slot and recomputes the hash from the
//! stored key when the table grows (a multiply for an integer), so its
//! table costs 5.7–11.4 bytes per group, and its keys grow by half, not
//! double. (A table is sized up front only where its size is known: the
//! HOP shared table refilled with the keys still held. Sizing a window's
//! table from the previous window's group count held filling windows at
//! full size, which cost more per open group than growing.)

use std::sync::Arc;

use datafusion::arrow::array::{
    types::*, Array, ArrayRef, ArrowPrimitiveType, AsArray, NullBufferBuilder, PrimitiveArray,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::common::DataFusionError;
use datafusion::logical_expr::EmitTo;
use datafusion::physical_plan::aggregates::group_values::{new_group_values, GroupValues};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use hashbrown::hash_table::{Entry, HashTable};

use crate::error::Result;

/// A table for keys of `schema`, sized for `hint` groups: [`IntKeys`] for one
/// integer, date, time or timestamp column, DataFusion's table otherwise.
pub(crate) fn key_table(schema: &SchemaRef, hint: usize) -> Result<Box<dyn GroupValues>> {
    if let [field] = &schema.fields()[..] {
        let d = field.data_type().clone();
        let table: Option<Box<dyn GroupValues>> = match &d {
            DataType::Int8 => Some(Box::new(IntKeys::<Int8Type>::new(d, hint))),
            DataType::Int16 => Some(Box::new(IntKeys::<Int16Type>::new(d, hint))),
            DataType::Int32 => Some(Box::new(IntKeys::<Int32Type>::new(d, hint))),
            DataType::Int64 => Some(Box::new(IntKeys::<Int64Type>::new(d, hint))),
            DataType::UInt8 => Some(Box::new(IntKeys::<UInt8Type>::new(d, hint))),
            DataType::UInt16 => Some(Box::new(IntKeys::<UInt16Type>::new(d, hint))),
            DataType::UInt32 => Some(Box::new(IntKeys::<UInt32Type>::new(d, hint))),
            DataType::UInt64 => Some(Box::new(IntKeys::<UInt64Type>::new(d, hint))),
            DataType::Date32 => Some(Box::new(IntKeys::<Date32Type>::new(d, hint))),
            DataType::Date64 => Some(Box::new(IntKeys::<Date64Type>::new(d, hint))),
            DataType::Time32(TimeUnit::Second) => {
                Some(Box::new(IntKeys::<Time32SecondType>::new(d, hint)))
            }
            DataType::Time32(TimeUnit::Millisecond) => {
                Some(Box::new(IntKeys::<Time32MillisecondType>::new(d, hint)))
            }
            DataType::Time64(TimeUnit::Microsecond) => {
                Some(Box::new(IntKeys::<Time64MicrosecondType>::new(d, hint)))
            }
            DataType::Time64(TimeUnit::Nanosecond) => {
                Some(Box::new(IntKeys::<Time64NanosecondType>::new(d, hint)))
            }
            DataType::Timestamp(TimeUnit::Second, _) => {
                Some(Box::new(IntKeys::<TimestampSecondType>::new(d, hint)))
            }
            DataType::Timestamp(TimeUnit::Millisecond, _) => {
                Some(Box::new(IntKeys::<TimestampMillisecondType>::new(d, hint)))
            }
            DataType::Timestamp(TimeUnit::Microsecond, _) => {
                Some(Box::new(IntKeys::<TimestampMicrosecondType>::new(d, hint)))
            }
            DataType::Timestamp(TimeUnit::Nanosecond, _) => {
                Some(Box::new(IntKeys::<TimestampNanosecondType>::new(d, hint)))
            }
            _ => None,
        };
        if let Some(table) = table {
            return Ok(table);
        }
    }
    Ok(new_group_values(schema.clone(), &GroupOrdering::None)?)
}

/// An integer key's bits, for hashing.
pub(crate) trait IntKey: Copy + PartialEq + Default + Send {
    fn bits(self) -> u64;
}

macro_rules! int_key {
    ($($t:ty),+) => {
        $(impl IntKey for $t {
            #[inline]
            fn bits(self) -> u64 {
                self as u64
            }
        })+
    };
}
int_key!(i8, i16, i32, i64, u8, u16, u32, u64);

/// Keys of one integer-like column: group `g`'s key is `values[g]`; each
/// slot of `map` holds a group number, and a key's hash is recomputed from
/// its value.
pub(crate) struct IntKeys<T: ArrowPrimitiveType> {
    data_type: DataType,
    map: HashTable<u32>,
    values: Vec<T::Native>,
    /// The group of the null key, if any (its `values` entry is a filler).
    null_group: Option<u32>,
    /// Per table, so that keys chosen to collide under one seed don't
    /// under another.
    seed: u64,
}

/// A folded multiply (the product's high half xor its low half): every
/// input bit reaches both the low bits (the bucket) and the top seven (the
/// control byte) that the table uses.
#[inline]
fn hash(seed: u64, bits: u64) -> u64 {
    let m = u128::from(bits ^ seed) * 0x9E37_79B9_7F4A_7C15_u128;
    (m as u64) ^ ((m >> 64) as u64)
}

fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

impl<T: ArrowPrimitiveType> IntKeys<T>
where
    T::Native: IntKey,
{
    pub(crate) fn new(data_type: DataType, hint: usize) -> IntKeys<T> {
        IntKeys {
            data_type,
            map: HashTable::with_capacity(hint),
            values: Vec::with_capacity(hint),
            null_group: None,
            seed: random_seed(),
        }
    }

    /// The group of `key`, new ones numbered in order. [`intern`] checks
    /// once per batch that the numbers fit in a `u32`.
    ///
    /// [`intern`]: GroupValues::intern
    #[inline]
    fn group(&mut self, key: T::Native) -> usize {
        let seed = self.seed;
        let values = &self.values;
        let entry = self.map.entry(
            hash(seed, key.bits()),
            |&g| values[g as usize] == key,
            |&g| hash(seed, values[g as usize].bits()),
        );
        match entry {
            Entry::Occupied(o) => *o.get() as usize,
            Entry::Vacant(v) => {
                let g = self.values.len();
                v.insert(g as u32);
                if g == self.values.capacity() {
                    // Grow by half, not double: a table holds up to 1.5x
                    // its keys instead of 2x (still amortized O(1)).
                    self.values.reserve_exact((g / 2).max(64));
                }
                self.values.push(key);
                g
            }
        }
    }

    fn null(&mut self) -> usize {
        if let Some(g) = self.null_group {
            return g as usize;
        }
        let g = self.values.len();
        self.values.push(T::Native::default());
        self.null_group = Some(g as u32);
        g
    }

    fn array(&self, values: Vec<T::Native>, null: Option<u32>) -> ArrayRef {
        let nulls = null.and_then(|g| {
            let mut b = NullBufferBuilder::new(values.len());
            b.append_n_non_nulls(g as usize);
            b.append_null();
            b.append_n_non_nulls(values.len() - g as usize - 1);
            b.finish()
        });
        Arc::new(
            PrimitiveArray::<T>::new(values.into(), nulls).with_data_type(self.data_type.clone()),
        )
    }
}

/// Bytes of a `HashTable<u32>` of `capacity`: its buckets (a power of two,
/// at most 7/8 full from 8 buckets up), four bytes and a control byte each.
fn table_bytes(capacity: usize) -> usize {
    let buckets = match capacity {
        0 => return 0,
        c if c < 8 => (c + 1).next_power_of_two(),
        c => (c * 8 / 7).next_power_of_two(),
    };
    buckets * (std::mem::size_of::<u32>() + 1)
}

impl<T: ArrowPrimitiveType> GroupValues for IntKeys<T>
where
    T::Native: IntKey,
{
    fn intern(
        &mut self,
        cols: &[ArrayRef],
        groups: &mut Vec<usize>,
    ) -> std::result::Result<(), DataFusionError> {
        let column = cols[0].as_primitive::<T>();
        // Group numbers are `u32`s: even if every row is a new key.
        if self.values.len() + column.len() > u32::MAX as usize {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "more than {} groups in one key table",
                u32::MAX
            )));
        }
        groups.clear();
        groups.reserve(column.len());
        if column.null_count() == 0 {
            groups.extend(column.values().iter().map(|&key| self.group(key)));
        } else {
            for key in column {
                groups.push(match key {
                    Some(key) => self.group(key),
                    None => self.null(),
                });
            }
        }
        Ok(())
    }

    fn size(&self) -> usize {
        table_bytes(self.map.capacity()) + self.values.capacity() * std::mem::size_of::<T::Native>()
    }

    fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    fn len(&self) -> usize {
        self.values.len()
    }

    fn emit(&mut self, emit_to: EmitTo) -> std::result::Result<Vec<ArrayRef>, DataFusionError> {
        let array = match emit_to {
            EmitTo::All => {
                // The memory goes with the keys: a drained table starts small.
                self.map = HashTable::new();
                let values = std::mem::take(&mut self.values);
                let null = self.null_group.take();
                self.array(values, null)
            }
            EmitTo::First(n) => {
                let n = n.min(self.values.len());
                self.map.retain(|g| match (*g as usize).checked_sub(n) {
                    Some(shifted) => {
                        *g = shifted as u32;
                        true
                    }
                    None => false,
                });
                let null = match self.null_group {
                    Some(g) if (g as usize) < n => self.null_group.take(),
                    Some(g) => {
                        self.null_group = Some(g - n as u32);
                        None
                    }
                    None => None,
                };
                let rest = self.values.split_off(n);
                let first = std::mem::replace(&mut self.values, rest);
                self.array(first, null)
            }
        };
        Ok(vec![array])
    }

    fn clear_shrink(&mut self, num_rows: usize) {
        self.values = Vec::with_capacity(num_rows);
        self.map = HashTable::with_capacity(num_rows);
        self.null_group = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, TimestampMillisecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn table(d: DataType) -> Box<dyn GroupValues> {
        key_table(&Arc::new(Schema::new(vec![Field::new("k", d, true)])), 0).unwrap()
    }

    /// The same groups, in the same order, as DataFusion's own table, with
    /// nulls, repeats and enough keys to grow the table several times.
    #[test]
    fn groups_match_datafusion() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let mut ours = key_table(&schema, 0).unwrap();
        let mut theirs = new_group_values(schema, &GroupOrdering::None).unwrap();
        for round in 0..4i64 {
            let keys: Int64Array = (0..5_000i64)
                .map(|i| (i % 97 != 3).then_some((i * 7919 + round * 13) % 3_001 - 1_500))
                .collect();
            let keys: ArrayRef = Arc::new(keys);
            let (mut a, mut b) = (Vec::new(), Vec::new());
            ours.intern(std::slice::from_ref(&keys), &mut a).unwrap();
            theirs.intern(std::slice::from_ref(&keys), &mut b).unwrap();
            assert_eq!(a, b);
        }
        assert_eq!(ours.len(), theirs.len());
        let first_ours = ours.emit(EmitTo::First(100)).unwrap();
        let first_theirs = theirs.emit(EmitTo::First(100)).unwrap();
        assert_eq!(&first_ours[0], &first_theirs[0]);
        // After a partial emit, the rest keep their order and new keys follow.
        let keys: ArrayRef = Arc::new(Int64Array::from(vec![Some(9_999), None, Some(-1_500)]));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        ours.intern(std::slice::from_ref(&keys), &mut a).unwrap();
        theirs.intern(std::slice::from_ref(&keys), &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            &ours.emit(EmitTo::All).unwrap()[0],
            &theirs.emit(EmitTo::All).unwrap()[0]
        );
        assert!(ours.is_empty());
    }

    /// Timestamp keys come back with their type (and time zone).
    #[test]
    fn keeps_the_key_type() {
        let d = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
        let mut t = table(d.clone());
        let keys: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![5, 5, 7]).with_timezone("UTC"));
        let mut ids = Vec::new();
        t.intern(&[keys], &mut ids).unwrap();
        assert_eq!(ids, vec![0, 0, 1]);
        let out = t.emit(EmitTo::All).unwrap();
        assert_eq!(out[0].data_type(), &d);
        assert_eq!(out[0].len(), 2);
    }

    /// Four bytes and a control byte per slot, and no slack in the keys
    /// once sized by a hint: about half of what DataFusion's table reports
    /// for the same keys (which leaves out its control bytes).
    #[test]
    fn smaller_than_datafusion() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let keys: ArrayRef = Arc::new(Int64Array::from_iter_values(0..100_000));
        let mut ids = Vec::new();
        let mut ours = key_table(&schema, 100_000).unwrap();
        ours.intern(std::slice::from_ref(&keys), &mut ids).unwrap();
        let mut theirs = new_group_values(schema, &GroupOrdering::None).unwrap();
        theirs
            .intern(std::slice::from_ref(&keys), &mut ids)
            .unwrap();
        let per_group = ours.size() as f64 / 100_000.0;
        // 8 B of key, 131,072 slots of 5 B for 100,000 keys.
        assert!(per_group < 15.0, "{per_group} B per group");
        assert!(
            ours.size() * 10 < theirs.size() * 6,
            "{} vs {}",
            ours.size(),
            theirs.size()
        );
    }
}
