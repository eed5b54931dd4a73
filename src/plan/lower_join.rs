//! Lowering a join: its equality keys, the rest of its ON as a filter over
//! both inputs' columns, and — when the ON bounds the inputs' event times
//! against each other (`b.ts BETWEEN a.ts - INTERVAL '5' SECOND AND a.ts +
//! INTERVAL '10' SECOND`, the same with `>=` / `<=`, or equal window
//! bounds of two windowed inputs) — the interval that lets the join free
//! rows as the watermark passes them.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNode;
use datafusion::common::{Column as LogicalColumn, ScalarValue};
use datafusion::logical_expr::execution_props::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::join::{Interval, JoinKind, JoinNode, Temporal};
use super::lower::{lower_node, not_supported, physical, From, Lowered};
use super::temporal::Versioned;
use crate::catalog::Catalog;
use crate::error::{Result, SluiceError};

/// A join of two inputs on equal keys, with what else its ON says as a
/// filter over the joined rows.
pub(super) fn lower_join(
    j: &datafusion::logical_expr::Join,
    catalog: &Catalog,
    props: &ExecutionProps,
    planning: &PhysicalPlanningContext,
    versioned: &[Versioned],
) -> Result<Lowered> {
    use datafusion::common::{JoinType, NullEquality};
    let kind = match j.join_type {
        JoinType::Inner => JoinKind::Inner,
        JoinType::Left => JoinKind::Left,
        JoinType::Right => JoinKind::Right,
        JoinType::Full => JoinKind::Full,
        JoinType::LeftSemi => JoinKind::LeftSemi,
        JoinType::RightSemi => JoinKind::RightSemi,
        JoinType::LeftAnti | JoinType::RightAnti if j.null_aware => {
            return Err(not_supported(
                "NOT IN with a subquery (one NULL in the subquery's column would hide every \
                 row); use NOT EXISTS",
            ))
        }
        JoinType::LeftAnti => JoinKind::LeftAnti,
        JoinType::RightAnti => JoinKind::RightAnti,
        other => return Err(not_supported(&format!("a {other} join"))),
    };
    if j.on.is_empty() {
        return Err(not_supported(
            "a join without an equality between its inputs' columns (a cross join: every row \
             of one input with every row of the other)",
        ));
    }
    let left = lower_node(&j.left, catalog, props, planning, versioned)?;
    let right = lower_node(&j.right, catalog, props, planning, versioned)?;
    let mut left_keys = Vec::new();
    let mut right_keys = Vec::new();
    let mut on = Vec::new();
    for (l, r) in &j.on {
        let lk = physical(l, j.left.schema(), props, planning)?;
        let rk = physical(r, j.right.schema(), props, planning)?;
        let (lt, rt) = (
            lk.data_type(j.left.schema().as_arrow())?,
            rk.data_type(j.right.schema().as_arrow())?,
        );
        if lt != rt {
            return Err(SluiceError::Plan(format!(
                "the join compares {l} ({lt}) with {r} ({rt}): cast one to the other's type"
            )));
        }
        left_keys.push(lk);
        right_keys.push(rk);
        on.push((super::tidy(&l.to_string()), super::tidy(&r.to_string())));
    }
    // A lookup join (`FOR SYSTEM_TIME AS OF` processing time): the side
    // that reads a versioned relation is looked up, the other streams. A
    // temporal join (AS OF the stream's event time): that side holds the
    // versions.
    let reads = |l: &Lowered| {
        versioned
            .iter()
            .find(|v| l.sources().iter().any(|s| *s == v.relation))
    };
    let versions = match (reads(&left), reads(&right)) {
        (None, Some(v)) => Some((1, v)),
        (Some(v), None) => Some((0, v)),
        _ => None,
    };
    let mut lookup = None;
    let mut lookup_loads_first = false;
    let mut temporal = None;
    if let Some((side, v)) = versions {
        let what = if v.at.is_some() { "temporal" } else { "lookup" };
        let fits = matches!(
            (kind, side),
            (JoinKind::Inner, _) | (JoinKind::Left, 1) | (JoinKind::Right, 0)
        );
        if !fits {
            return Err(not_supported(&format!(
                "a {} {what} join (FOR SYSTEM_TIME AS OF): it runs as an inner join, or an \
                 outer join that keeps the stream's rows,",
                kind.sql()
            )));
        }
        let stream = if side == 1 { &left } else { &right };
        if stream.updating(catalog) {
            return Err(not_supported(&format!(
                "a {what} join (FOR SYSTEM_TIME AS OF) of an updating stream: its rows are \
                 matched once, so a later change could not take back what was emitted"
            )));
        }
        match &v.at {
            None => {
                lookup = Some(side);
                let looked_up = if side == 1 { &right } else { &left };
                lookup_loads_first = looked_up.sources().iter().all(|s| {
                    catalog
                        .relation(s)
                        .is_some_and(|r| r.connector.is_bounded())
                });
            }
            Some(at) => {
                let (versions, stream_schema) = if side == 1 {
                    (&right, j.left.schema())
                } else {
                    (&left, j.right.schema())
                };
                temporal = Some(temporal_of(
                    side,
                    at,
                    &v.relation,
                    (stream, stream_schema),
                    versions,
                    catalog,
                )?);
            }
        }
    }
    // An interval join: a join of append-only inputs whose ON bounds their
    // event times against each other.
    let appends = |l: &Lowered| !l.updating(catalog);
    let interval = if versions.is_none() && appends(&left) && appends(&right) {
        interval_of(j, &left.event_times(catalog), &right.event_times(catalog)).map(|mut i| {
            i.checked = !casts_times(j, &i);
            i
        })
    } else {
        None
    };
    // The ON filter is over both inputs' columns, whatever the join
    // emits (a semi join emits one side's). A temporal join's `version
    // time <= stream time` (`temporal.rs` adds it) holds for every match.
    // An interval join checks its bounds on the times themselves: the
    // conjuncts that say exactly them leave the filter.
    let without = |checked_here: &dyn Fn(&Expr) -> bool| {
        let kept: Vec<Expr> = split_conjunction(j.filter.as_ref()?)
            .into_iter()
            .filter(|c| !checked_here(c))
            .cloned()
            .collect();
        datafusion::logical_expr::utils::conjunction(kept)
    };
    let residual = match (&temporal, &interval) {
        (Some(t), _) => without(&|c| orders_times(j, t, c)),
        (None, Some(i)) if i.checked => without(&|c| bounds_exactly(j, i, c)),
        (None, _) => j.filter.clone(),
    };
    let both = j.left.schema().join(j.right.schema())?;
    let filter = residual
        .as_ref()
        .map(|f| physical(f, &both, props, planning))
        .transpose()?;
    let mut join = JoinNode {
        kind,
        left_keys,
        right_keys,
        filter,
        nulls_equal: j.null_equality == NullEquality::NullEqualsNull,
        interval,
        lookup,
        lookup_loads_first,
        temporal,
        state_ttl: None,
        text: String::new(),
    };
    let filter_text = residual.as_ref().map(|f| super::tidy(&f.to_string()));
    join.text = join.describe(&on, filter_text.as_deref());
    Ok(Lowered {
        from: From::Join {
            inputs: Box::new([left, right]),
            join: Box::new(join),
            schema: Arc::new(j.schema.as_arrow().clone()),
        },
        stages: vec![],
        aggregate: None,
        window: None,
    })
}

/// A temporal join whose input `side` reads `relation`'s versions, looked
/// up at the stream's column `at` (its event time): the stream's and the
/// versions' event times.
fn temporal_of(
    side: usize,
    at: &(Option<String>, String),
    relation: &str,
    (stream, stream_schema): (&Lowered, &datafusion::common::DFSchema),
    versions: &Lowered,
    catalog: &Catalog,
) -> Result<Temporal> {
    let (qualifier, column) = at;
    let shown = match qualifier {
        Some(q) => format!("{q}.{column}"),
        None => column.clone(),
    };
    if versions.updating(catalog) {
        return Err(not_supported(&format!(
            "a temporal join (FOR SYSTEM_TIME AS OF {shown}) of the updating input {relation}: \
             its versions are the rows of an append-only input with an event time; AS OF a \
             processing-time column (declared AS PROCTIME()) looks up an updating input's \
             current row"
        )));
    }
    if catalog.event_time(relation).is_none() {
        return Err(SluiceError::Plan(format!(
            "{relation} has no event time, so a temporal join cannot tell when each of its \
             versions starts: declare WATERMARK FOR on it"
        )));
    }
    let named = stream_schema.iter().position(|(q, f)| {
        f.name().eq_ignore_ascii_case(column)
            && qualifier
                .as_ref()
                .is_none_or(|want| q.is_some_and(|q| q.table().eq_ignore_ascii_case(want)))
    });
    let stream_time = named
        .and_then(|at| {
            stream
                .event_times(catalog)
                .into_iter()
                .find(|&(c, shift)| c == at && shift == 0)
        })
        .ok_or_else(|| {
            SluiceError::Plan(format!(
                "FOR SYSTEM_TIME AS OF {shown}: a temporal join looks versions up at the \
                 stream's event time (its WATERMARK FOR column, or a window's bounds), and \
                 {shown} is not one"
            ))
        })?;
    let version_time = versions
        .event_times(catalog)
        .into_iter()
        .find(|&(_, shift)| shift == 0)
        .ok_or_else(|| {
            SluiceError::Plan(format!(
                "{relation} is read FOR SYSTEM_TIME AS OF {shown}, but its rows reach the join \
                 without their event time"
            ))
        })?;
    Ok(Temporal {
        versions: side,
        stream_time: stream_time.0,
        stream_shift: stream_time.1,
        version_time: version_time.0,
        version_shift: version_time.1,
    })
}

/// Whether conjunct `c` of the ON is one of those that give interval `i`,
/// exactly: `>=`, `<=`, `=` or `BETWEEN` between the interval's time
/// columns plus constant intervals (no cast; a strict `<` or `>` is only
/// approximated by the bounds and stays in the filter).
fn bounds_exactly(j: &datafusion::logical_expr::Join, i: &Interval, c: &Expr) -> bool {
    let side = |e: &Expr| -> Option<usize> {
        let (col, _) = plain_term(e)?;
        if j.left.schema().index_of_column(col).ok() == Some(i.left_time) {
            Some(0)
        } else if j.right.schema().index_of_column(col).ok() == Some(i.right_time) {
            Some(1)
        } else {
            None
        }
    };
    let across = |a: &Expr, b: &Expr| matches!((side(a), side(b)), (Some(x), Some(y)) if x != y);
    match c {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(op, Operator::GtEq | Operator::LtEq | Operator::Eq) && across(left, right)
        }
        Expr::Between(b) => !b.negated && across(&b.expr, &b.low) && across(&b.expr, &b.high),
        _ => false,
    }
}

/// Whether a conjunct of the ON (or an equality among its keys) compares
/// interval `i`'s time columns through a cast: its bounds are then only
/// what the watermark frees rows by, and the filter checks the times.
fn casts_times(j: &datafusion::logical_expr::Join, i: &Interval) -> bool {
    let time = |e: &Expr| {
        e.column_refs().iter().any(|c| {
            j.left.schema().index_of_column(c).ok() == Some(i.left_time)
                || j.right.schema().index_of_column(c).ok() == Some(i.right_time)
        })
    };
    let cast = |e: &Expr| {
        let mut found = false;
        let _ = e.apply(|x| {
            if matches!(x, Expr::Cast(_) | Expr::TryCast(_)) && time(x) {
                found = true;
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        });
        found
    };
    j.on.iter().any(|(l, r)| cast(l) || cast(r)) || j.filter.as_ref().is_some_and(cast)
}

/// `term` without casts: a column, or a column plus or minus constant
/// intervals.
fn plain_term(e: &Expr) -> Option<(&LogicalColumn, i64)> {
    match e {
        Expr::Column(c) => Some((c, 0)),
        Expr::BinaryExpr(BinaryExpr { left, .. }) => {
            plain_term(left)?;
            term(e)
        }
        _ => None,
    }
}

/// Whether `c` is `version time <= stream time` of temporal join `t`.
fn orders_times(j: &datafusion::logical_expr::Join, t: &Temporal, c: &Expr) -> bool {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::LtEq,
        right,
    }) = c
    else {
        return false;
    };
    let (Expr::Column(v), Expr::Column(s)) = (left.as_ref(), right.as_ref()) else {
        return false;
    };
    let (versions, stream) = if t.versions == 1 {
        (j.right.schema(), j.left.schema())
    } else {
        (j.left.schema(), j.right.schema())
    };
    versions.index_of_column(v).ok() == Some(t.version_time)
        && t.version_shift == 0
        && stream.index_of_column(s).ok() == Some(t.stream_time)
}

/// A column of the join's input plus a constant offset in ms (`a.ts`,
/// `a.ts - INTERVAL '5' SECOND`).
fn term(e: &Expr) -> Option<(&LogicalColumn, i64)> {
    match e {
        Expr::Column(c) => Some((c, 0)),
        Expr::Cast(c) => term(&c.expr),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (c, base) = term(left)?;
            let ms = interval_ms(right)?;
            match op {
                Operator::Plus => Some((c, base.checked_add(ms)?)),
                Operator::Minus => Some((c, base.checked_sub(ms)?)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// A literal interval of days and smaller units, in ms.
fn interval_ms(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    match v {
        ScalarValue::IntervalDayTime(Some(v)) => {
            Some(i64::from(v.days) * 86_400_000 + i64::from(v.milliseconds))
        }
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            Some(i64::from(v.days) * 86_400_000 + v.nanoseconds / 1_000_000)
        }
        ScalarValue::DurationMillisecond(Some(v)) => Some(*v),
        ScalarValue::DurationSecond(Some(v)) => v.checked_mul(1000),
        _ => None,
    }
}

/// The interval the ON (`on` equalities and `filter`) puts on `right
/// time - left time`, for the pair of event-time columns (`left_times` of
/// the left input, `right_times` of the right, each with its shift) it
/// bounds most tightly; `None` unless some pair is bounded both ways.
fn interval_of(
    j: &datafusion::logical_expr::Join,
    left_times: &[(usize, i64)],
    right_times: &[(usize, i64)],
) -> Option<Interval> {
    let mut best: Option<Interval> = None;
    for &(lt, ls) in left_times {
        for &(rt, rs) in right_times {
            let Some((lo, hi)) = bounds(j, (lt, ls), (rt, rs)) else {
                continue;
            };
            if best.is_none_or(|b| hi - lo < b.hi - b.lo) {
                best = Some(Interval {
                    left_time: lt,
                    left_shift: ls,
                    right_time: rt,
                    right_shift: rs,
                    lo,
                    hi,
                    checked: false,
                });
            }
        }
    }
    best
}

/// The bounds on `right time - left time` where a left row's time is its
/// column `lt.0` plus `lt.1` ms and a right row's its column `rt.0` plus
/// `rt.1`.
fn bounds(
    j: &datafusion::logical_expr::Join,
    lt: (usize, i64),
    rt: (usize, i64),
) -> Option<(i64, i64)> {
    // Which input's time column `c` is (0 left, 1 right), with its shift.
    let side_of = |c: &LogicalColumn| -> Option<(usize, i64)> {
        if j.left.schema().index_of_column(c).ok() == Some(lt.0) {
            Some((0, lt.1))
        } else if j.right.schema().index_of_column(c).ok() == Some(rt.0) {
            Some((1, rt.1))
        } else {
            None
        }
    };
    let (mut lo, mut hi) = (None::<i64>, None::<i64>);
    // `a op b`: each a time column plus an offset; column = time - shift.
    let mut bound = |a: &Expr, op: Operator, b: &Expr| -> Option<()> {
        let ((ca, oa), (cb, ob)) = (term(a)?, term(b)?);
        let ((sa, sha), (sb, shb)) = (side_of(ca)?, side_of(cb)?);
        if sa == sb {
            return None;
        }
        let (oa, ob) = (oa.checked_sub(sha)?, ob.checked_sub(shb)?);
        // Put it as `right - left  op'  k`.
        let (op, k) = if sa == 1 {
            // R + oa op L + ob  →  R - L op ob - oa
            (op, ob.checked_sub(oa)?)
        } else {
            // L + oa op R + ob  →  R - L  flipped(op)  oa - ob
            (op.swap()?, oa.checked_sub(ob)?)
        };
        match op {
            Operator::GtEq | Operator::Gt => lo = Some(lo.map_or(k, |l| l.max(k))),
            Operator::LtEq | Operator::Lt => hi = Some(hi.map_or(k, |h| h.min(k))),
            Operator::Eq => {
                lo = Some(lo.map_or(k, |l| l.max(k)));
                hi = Some(hi.map_or(k, |h| h.min(k)));
            }
            _ => return None,
        }
        Some(())
    };
    // Equal window bounds (a window join) are among the keys.
    for (l, r) in &j.on {
        bound(l, Operator::Eq, r);
    }
    if let Some(filter) = &j.filter {
        for conjunct in split_conjunction(filter) {
            match conjunct {
                Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                    bound(left, *op, right);
                }
                Expr::Between(b) if !b.negated => {
                    bound(&b.expr, Operator::GtEq, &b.low);
                    bound(&b.expr, Operator::LtEq, &b.high);
                }
                _ => {}
            }
        }
    }
    match (lo, hi) {
        (Some(lo), Some(hi)) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}
