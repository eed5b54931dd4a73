//! Where a pipeline's inputs meet: checkpoint barriers are aligned (an input
//! that delivered its barrier is not read again until every other input
//! has delivered theirs, as in Flink and RisingWave), and an input's
//! "caught up" mark goes on only once every input is caught up.
//!
//! An input whose channel closed counts as having delivered every barrier
//! and as caught up. Plain bookkeeping; the pipeline's loop does the I/O.

use crate::plan::NodeId;
use crate::stream::Barrier;

pub struct Alignment {
    /// Each input's source node in the plan (its state's key in a barrier).
    ids: Vec<NodeId>,
    /// The barrier each input delivered in the alignment under way.
    pending: Vec<Option<Barrier>>,
    closed: Vec<bool>,
    caught_up: Vec<bool>,
    /// The caught-up mark went on.
    all_caught_up: bool,
}

impl Alignment {
    pub fn new(ids: Vec<NodeId>) -> Self {
        let n = ids.len();
        Alignment {
            ids,
            pending: vec![None; n],
            closed: vec![false; n],
            caught_up: vec![false; n],
            all_caught_up: false,
        }
    }

    /// Whether input `i` waits for the others' barriers (so it is not read).
    pub fn blocked(&self, i: usize) -> bool {
        self.pending[i].is_some()
    }

    pub fn closed(&self, i: usize) -> bool {
        self.closed[i]
    }

    pub fn all_closed(&self) -> bool {
        self.closed.iter().all(|c| *c)
    }

    /// Input `i` delivered `barrier`; returns the pipeline's barrier once
    /// every open input has delivered one.
    pub fn barrier(&mut self, i: usize, barrier: Barrier) -> Option<Barrier> {
        self.pending[i] = Some(barrier);
        self.complete()
    }

    /// Input `i`'s channel closed; the alignment it held up may complete.
    pub fn close(&mut self, i: usize) -> Option<Barrier> {
        self.closed[i] = true;
        self.pending[i] = None;
        self.complete()
    }

    /// Input `i` caught up; `true` when that makes every input caught up.
    pub fn caught_up(&mut self, i: usize) -> bool {
        self.caught_up[i] = true;
        self.check_caught_up()
    }

    /// `true` (once) when every input is caught up or closed.
    pub fn check_caught_up(&mut self) -> bool {
        if self.all_caught_up {
            return false;
        }
        let all = (0..self.ids.len()).all(|i| self.caught_up[i] || self.closed[i]);
        self.all_caught_up = all;
        all
    }

    fn complete(&mut self) -> Option<Barrier> {
        let open = (0..self.ids.len()).filter(|&i| !self.closed[i]);
        if open.clone().any(|i| self.pending[i].is_none()) || open.clone().next().is_none() {
            return None;
        }
        let arrived: Vec<(NodeId, Barrier)> = (0..self.ids.len())
            .filter_map(|i| self.pending[i].take().map(|b| (self.ids[i], b)))
            .collect();
        Some(merge(arrived, self.ids.len()))
    }
}

/// One barrier for the pipeline out of its inputs' (a source injects a
/// barrier for the latest epoch it was told of, so inputs may name
/// different epochs: the cut is consistent either way, and counts for the
/// latest). With one input its source state stays as it is; with several,
/// each input's goes under its source node's id.
fn merge(arrived: Vec<(NodeId, Barrier)>, inputs: usize) -> Barrier {
    let epoch = arrived.iter().map(|(_, b)| b.epoch).max().unwrap_or(0);
    let injected = arrived.iter().filter_map(|(_, b)| b.injected).min();
    let source = if inputs == 1 {
        arrived
            .into_iter()
            .next()
            .map(|(_, b)| b.source)
            .unwrap_or_default()
    } else {
        let by_node: serde_json::Map<String, serde_json::Value> = arrived
            .into_iter()
            .map(|(id, b)| (id.to_string(), b.source))
            .collect();
        serde_json::json!({ "inputs": by_node })
    };
    Barrier {
        epoch,
        source,
        operators: Vec::new(),
        injected,
    }
}

/// Input `id`'s part of a pipeline's restored source state (see `merge`).
pub fn input_state(source: &serde_json::Value, id: NodeId, inputs: usize) -> serde_json::Value {
    if inputs == 1 {
        return source.clone();
    }
    source
        .get("inputs")
        .and_then(|m| m.get(id.to_string()))
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn barrier(epoch: u64, position: i64) -> Barrier {
        Barrier {
            epoch,
            source: serde_json::json!({ "positions": { "0": position } }),
            ..Barrier::default()
        }
    }

    #[test]
    fn a_barrier_goes_on_once_every_open_input_delivered_it() {
        let mut a = Alignment::new(vec![NodeId(0), NodeId(2)]);
        assert!(a.barrier(0, barrier(3, 10)).is_none());
        assert!(a.blocked(0) && !a.blocked(1));
        let b = a.barrier(1, barrier(3, 20)).expect("aligned");
        assert_eq!(b.epoch, 3);
        assert!(!a.blocked(0) && !a.blocked(1));
        assert_eq!(input_state(&b.source, NodeId(2), 2)["positions"]["0"], 20);
        assert_eq!(input_state(&b.source, NodeId(0), 2)["positions"]["0"], 10);
        // An input that closes no longer holds barriers up.
        assert!(a.barrier(1, barrier(4, 21)).is_none());
        let b = a.close(0).expect("aligned without the closed input");
        assert_eq!(b.epoch, 4);
        assert_eq!(
            input_state(&b.source, NodeId(0), 2),
            serde_json::Value::Null
        );
        assert!(a.barrier(1, barrier(5, 22)).is_some());
    }

    #[test]
    fn one_input_keeps_its_source_state_as_it_is() {
        let mut a = Alignment::new(vec![NodeId(0)]);
        let b = a.barrier(0, barrier(1, 7)).expect("aligned");
        assert_eq!(b.source["positions"]["0"], 7);
        assert_eq!(input_state(&b.source, NodeId(0), 1)["positions"]["0"], 7);
    }

    #[test]
    fn caught_up_once_every_input_is() {
        let mut a = Alignment::new(vec![NodeId(0), NodeId(1)]);
        assert!(!a.caught_up(0));
        a.close(1);
        assert!(a.check_caught_up());
        assert!(!a.check_caught_up(), "only once");
    }
}
