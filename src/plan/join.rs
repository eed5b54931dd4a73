//! Join node: two inputs matched on equal keys (a regular join). Every row
//! of both inputs stays in its state for as long as it lives (an updating
//! input takes rows back), since a row that arrives later on one side may
//! match any row of the other: nothing bounds that state yet.
//!
//! An inner join's output is append-only when both inputs are; otherwise
//! each match comes and goes with the input rows it pairs (a changelog of
//! whole rows). An outer join's is always a changelog: a preserved row
//! that matches nothing yet is emitted padded with NULLs, and taken back
//! when its first match arrives.

use std::sync::Arc;

use datafusion::physical_expr::PhysicalExpr;

/// Which rows a join emits: the matches, and for an outer join the rows of
/// the side(s) it preserves that match nothing, padded with NULLs.
/// A semi join (`IN` / `EXISTS`) emits a row of one side while it has a
/// match, an anti join (`NOT EXISTS`) while it has none: that side's
/// columns only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    Right,
    Full,
    LeftSemi,
    RightSemi,
    LeftAnti,
    RightAnti,
}

impl JoinKind {
    pub fn sql(self) -> &'static str {
        match self {
            JoinKind::Inner => "INNER",
            JoinKind::Left => "LEFT",
            JoinKind::Right => "RIGHT",
            JoinKind::Full => "FULL",
            JoinKind::LeftSemi => "LEFT SEMI",
            JoinKind::RightSemi => "RIGHT SEMI",
            JoinKind::LeftAnti => "LEFT ANTI",
            JoinKind::RightAnti => "RIGHT ANTI",
        }
    }

    /// Whether its output takes rows back even when its inputs never do:
    /// an outer join's padded rows, an anti join's rows that find a match.
    pub fn retracts(self) -> bool {
        !matches!(
            self,
            JoinKind::Inner | JoinKind::LeftSemi | JoinKind::RightSemi
        )
    }

    /// For a semi or anti join: the side whose rows it emits (0 left, 1
    /// right) and whether it is anti.
    pub fn exists(self) -> Option<(usize, bool)> {
        match self {
            JoinKind::LeftSemi => Some((0, false)),
            JoinKind::RightSemi => Some((1, false)),
            JoinKind::LeftAnti => Some((0, true)),
            JoinKind::RightAnti => Some((1, true)),
            _ => None,
        }
    }
}

/// Rows of its inputs whose `left_keys` (over the left input's rows) equal
/// its `right_keys` (over the right's), and pass `filter` (over the joined
/// row: the left input's columns, then the right's).
#[derive(Debug, Clone)]
pub struct JoinNode {
    pub kind: JoinKind,
    pub left_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub right_keys: Vec<Arc<dyn PhysicalExpr>>,
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// NULL keys match each other (`IS NOT DISTINCT FROM`); otherwise a
    /// row with a NULL key matches nothing, as `=` says.
    pub nulls_equal: bool,
    /// The ON bounds the inputs' event times against each other: an
    /// interval join, whose rows are freed as the watermark passes them.
    pub interval: Option<Interval>,
    /// A lookup join (`FOR SYSTEM_TIME AS OF` processing time): which input
    /// (0 left, 1 right) is looked up. A row of the other is matched once,
    /// when it arrives, against that input's current rows, and not kept.
    pub lookup: Option<usize>,
    /// A lookup join whose looked-up input is bounded (a file, a generator
    /// with a limit, a view over them): the stream's rows wait until it has
    /// been read whole, so each is matched against all of it.
    pub lookup_loads_first: bool,
    /// A temporal join in event time (`FOR SYSTEM_TIME AS OF` the stream's
    /// event time).
    pub temporal: Option<Temporal>,
    /// `state_ttl`: a regular join forgets a kept row this long (ms) after
    /// it arrived, trading exactness for memory.
    pub state_ttl: Option<i64>,
    /// What EXPLAIN shows of it ([`JoinNode::describe`]).
    pub text: String,
}

/// `right time - left time` lies in `[lo, hi]` (ms) for every match, where
/// a row's time is its input's event-time column (`left_time` of the left
/// input's rows, `right_time` of the right's) plus a shift: values no row
/// still to come of that input is behind the watermark by. A left row can match no right row still to come once the
/// watermark passes its time + `hi`; a right row once it passes its time
/// − `lo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    pub left_time: usize,
    /// Added to the left time column (a window's start plus its size is
    /// its end).
    pub left_shift: i64,
    pub right_time: usize,
    pub right_shift: i64,
    pub lo: i64,
    pub hi: i64,
    /// The join checks the bounds on the times itself: the ON's conjuncts
    /// that say exactly them are not in its filter (none compares the
    /// times through a cast).
    pub checked: bool,
}

/// A temporal join in event time: input `versions` (0 left, 1 right) holds
/// versions of its join key, each valid from its time (column
/// `version_time` plus `version_shift` ms) until the next one's; a row of
/// the other input (the stream) is matched with the version valid at its
/// time (column `stream_time` plus `stream_shift`), once the watermark is
/// past that time, so no version that could be valid then is still to
/// come. Only the stream's rows reach the output (padded for an outer join
/// without a version): it is append-only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Temporal {
    pub versions: usize,
    pub stream_time: usize,
    pub stream_shift: i64,
    pub version_time: usize,
    pub version_shift: i64,
}

impl Temporal {
    /// Input `side`'s time column and shift.
    pub fn time_of(&self, side: usize) -> (usize, i64) {
        if side == self.versions {
            (self.version_time, self.version_shift)
        } else {
            (self.stream_time, self.stream_shift)
        }
    }
}

impl Interval {
    /// When row time `t` of input `side` (0 left, 1 right) can match
    /// nothing more: once the watermark is past it.
    pub fn expiry(&self, side: usize, t: i64) -> i64 {
        if side == 0 {
            t.saturating_add(self.hi)
        } else {
            t.saturating_sub(self.lo)
        }
    }
}

impl JoinNode {
    /// As EXPLAIN shows it: `on` and `filter` as the query wrote them
    /// (qualified: both inputs may have a column of the same name).
    pub fn describe(&self, on: &[(String, String)], filter: Option<&str>) -> String {
        let op = if self.nulls_equal {
            "IS NOT DISTINCT FROM"
        } else {
            "="
        };
        let on: Vec<String> = on.iter().map(|(l, r)| format!("{l} {op} {r}")).collect();
        let lookup = if self.lookup.is_some() {
            " LOOKUP (processing time)"
        } else if self.temporal.is_some() {
            " TEMPORAL (event time)"
        } else {
            ""
        };
        let mut text = format!("{}{lookup} on {}", self.kind.sql(), on.join(" AND "));
        if let Some(f) = filter {
            text.push_str(&format!(", filter {f}"));
        }
        if self.lookup.is_some() && self.lookup_loads_first {
            text.push_str(
                "; state: the looked-up input's rows (it is bounded: the stream's rows wait \
                 until it is read whole, then are matched once)",
            );
            return text;
        }
        if self.lookup.is_some() {
            text.push_str(
                "; state: the looked-up input's current rows; the stream's rows are matched \
                 once, when they arrive",
            );
            return text;
        }
        if let Some(t) = &self.temporal {
            let side = |s: usize| if s == 0 { "left" } else { "right" };
            text.push_str(&format!(
                "; versions: the {} input's rows by key, valid from their time; state: the \
                 {} input's rows until the watermark passes their time, and per key the version \
                 valid at the watermark and those after it; late rows dropped",
                side(t.versions),
                side(1 - t.versions)
            ));
            return text;
        }
        match &self.interval {
            Some(i) => text.push_str(&format!(
                "; interval: right time - left time in [{}, {}]; state: the rows the \
                 watermark has not passed by that much; late rows dropped",
                super::show_ms(i.lo),
                super::show_ms(i.hi)
            )),
            None => text.push_str("; state: every row of both inputs (nothing bounds it)"),
        }
        text
    }

    /// Whether nothing but `state_ttl` could bound its state: a regular
    /// join (not an interval, lookup or temporal one).
    pub fn unbounded(&self) -> bool {
        self.interval.is_none() && self.temporal.is_none() && self.lookup.is_none()
    }

    /// Forgets kept rows `ttl` ms after they arrived; EXPLAIN says so.
    pub fn with_state_ttl(&mut self, ttl: i64) {
        self.state_ttl = Some(ttl);
        self.text = self.text.replace(
            "state: every row of both inputs (nothing bounds it)",
            &format!(
                "state: each row of both inputs for state_ttl {} after it arrived (a match \
                 with a forgotten row is missed)",
                super::show_ms(ttl)
            ),
        );
    }

    /// Whether its output takes back rows even when its inputs never do
    /// (an interval or temporal join emits an outer row once, when it is
    /// final).
    pub fn retracts(&self) -> bool {
        self.interval.is_none()
            && self.lookup.is_none()
            && self.temporal.is_none()
            && self.kind.retracts()
    }
}
