//! Where a pipeline's inputs meet: checkpoint barriers are aligned (an input
//! that delivered its barrier is not read again until every other input
//! has delivered theirs, as in Flink and RisingWave), and an input's
//! "caught up" mark goes on only once every input is caught up.
//!
//! The same alignment merges the instances of a plan's keyed part
//! (`exchange.rs`): there every input carries the same source state, the
//! operator states they gathered are concatenated, and a source's commit
//! runs only once every instance has passed it (each has written the rows
//! before it).
//!
//! An input whose channel closed counts as having delivered every barrier
//! and as caught up. Plain bookkeeping; the pipeline's loop does the I/O.

use std::collections::VecDeque;

use crate::plan::NodeId;
use crate::stream::{Barrier, Commit};

pub struct Alignment {
    /// Each input's source node in the plan (its state's key in a barrier);
    /// empty when merging instances.
    ids: Vec<NodeId>,
    /// The barrier each input delivered in the alignment under way.
    pending: Vec<Option<Barrier>>,
    /// Each input's source state in the last barrier it delivered: once it
    /// closed (its source ended after a last barrier behind all its rows),
    /// the later barriers carry it on, so a restore does not read that
    /// source again from its start.
    last_source: Vec<Option<serde_json::Value>>,
    closed: Vec<bool>,
    caught_up: Vec<bool>,
    /// The caught-up mark went on.
    all_caught_up: bool,
    /// Merging instances: the commits each delivered that have not run.
    commits: Option<Vec<VecDeque<Commit>>>,
}

impl Alignment {
    pub fn new(ids: Vec<NodeId>) -> Self {
        let n = ids.len();
        Alignment {
            ids,
            pending: vec![None; n],
            last_source: vec![None; n],
            closed: vec![false; n],
            caught_up: vec![false; n],
            all_caught_up: false,
            commits: None,
        }
    }

    /// Merges `n` instances of a plan's keyed part.
    pub fn instances(n: usize) -> Self {
        Alignment {
            ids: Vec::new(),
            pending: vec![None; n],
            last_source: vec![None; n],
            closed: vec![false; n],
            caught_up: vec![false; n],
            all_caught_up: false,
            commits: Some((0..n).map(|_| VecDeque::new()).collect()),
        }
    }

    fn inputs(&self) -> usize {
        self.pending.len()
    }

    /// Input `i` delivered a source's commit: what may run now (merging
    /// instances, once every open one has delivered it).
    pub fn commit(&mut self, i: usize, commit: Commit) -> Option<Commit> {
        match &mut self.commits {
            None => Some(commit),
            Some(queues) => {
                queues[i].push_back(commit);
                self.release()
            }
        }
    }

    /// Commits every open instance has delivered (after one closed, those
    /// it held up).
    pub fn release(&mut self) -> Option<Commit> {
        let queues = self.commits.as_mut()?;
        let mut ready = Vec::new();
        loop {
            let open = (0..queues.len()).filter(|&i| !self.closed[i]);
            if open.clone().next().is_none() || open.clone().any(|i| queues[i].is_empty()) {
                break;
            }
            for q in queues.iter_mut() {
                ready.extend(q.pop_front());
            }
        }
        if self.closed.iter().all(|c| *c) {
            ready.extend(queues.iter_mut().flat_map(|q| q.drain(..)));
        }
        (!ready.is_empty())
            .then(|| Commit(Box::new(move || ready.into_iter().for_each(|c| (c.0)()))))
    }

    /// Whether input `i` waits for the others (so it is not read): for
    /// their barriers, or, caught up, for them to catch up too. Until the
    /// pipeline's caught-up mark reaches a restored sink, it writes
    /// nothing, so an input's new rows must not overtake another input's
    /// replay (replays happen without checkpoints, so the two waits never
    /// meet; were they to, the barrier's wins).
    pub fn blocked(&self, i: usize) -> bool {
        self.pending[i].is_some()
            || (self.caught_up[i]
                && !self.all_caught_up
                && self.pending.iter().all(Option::is_none))
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
        self.last_source[i] = Some(barrier.source.clone());
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
        let all = (0..self.inputs()).all(|i| self.caught_up[i] || self.closed[i]);
        self.all_caught_up = all;
        all
    }

    fn complete(&mut self) -> Option<Barrier> {
        let open = (0..self.inputs()).filter(|&i| !self.closed[i]);
        if open.clone().any(|i| self.pending[i].is_none()) || open.clone().next().is_none() {
            return None;
        }
        if self.commits.is_some() {
            return Some(gather(self.pending.iter_mut().filter_map(Option::take)));
        }
        let arrived: Vec<(NodeId, Barrier)> = (0..self.ids.len())
            .filter_map(|i| {
                let barrier = self.pending[i].take().or_else(|| {
                    // A closed input: where its source ended.
                    let source = self.last_source[i].clone().filter(|_| self.closed[i])?;
                    Some(Barrier {
                        source,
                        ..Barrier::default()
                    })
                })?;
                Some((self.ids[i], barrier))
            })
            .collect();
        Some(merge(arrived, self.ids.len()))
    }
}

/// One barrier for the pipeline out of its inputs' (a source injects a
/// barrier for the latest epoch it was told of, so inputs may name
/// different epochs: the cut is consistent either way, and counts for the
/// latest). With one input its source state stays as it is; with several,
/// each input's goes under its source node's id.
fn merge(mut arrived: Vec<(NodeId, Barrier)>, inputs: usize) -> Barrier {
    let epoch = arrived.iter().map(|(_, b)| b.epoch).max().unwrap_or(0);
    let injected = arrived.iter().filter_map(|(_, b)| b.injected).min();
    // What the operators before an exchange gathered (an instance's input).
    let operators = arrived
        .iter_mut()
        .flat_map(|(_, b)| std::mem::take(&mut b.operators))
        .collect();
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
        operators,
        injected,
    }
}

/// The instances' barriers as one: the same source state, the operator
/// states each gathered.
fn gather(arrived: impl Iterator<Item = Barrier>) -> Barrier {
    let mut out = Barrier::default();
    for (i, b) in arrived.enumerate() {
        if i == 0 {
            out.epoch = b.epoch;
            out.source = b.source;
            out.injected = b.injected;
        }
        out.epoch = out.epoch.max(b.epoch);
        out.operators.extend(b.operators);
    }
    out
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
        // An input that closes no longer holds barriers up; the later
        // barriers keep where its source ended (its last barrier).
        assert!(a.barrier(1, barrier(4, 21)).is_none());
        let b = a.close(0).expect("aligned without the closed input");
        assert_eq!(b.epoch, 4);
        assert_eq!(input_state(&b.source, NodeId(0), 2)["positions"]["0"], 10);
        let b = a.barrier(1, barrier(5, 22)).expect("aligned");
        assert_eq!(input_state(&b.source, NodeId(0), 2)["positions"]["0"], 10);
        assert_eq!(input_state(&b.source, NodeId(2), 2)["positions"]["0"], 22);
        // One that closed before any barrier has no state to keep.
        let mut a = Alignment::new(vec![NodeId(0), NodeId(2)]);
        assert!(a.close(0).is_none());
        let b = a.barrier(1, barrier(1, 5)).expect("aligned");
        assert_eq!(
            input_state(&b.source, NodeId(0), 2),
            serde_json::Value::Null
        );
    }

    #[test]
    fn one_input_keeps_its_source_state_as_it_is() {
        let mut a = Alignment::new(vec![NodeId(0)]);
        let b = a.barrier(0, barrier(1, 7)).expect("aligned");
        assert_eq!(b.source["positions"]["0"], 7);
        assert_eq!(input_state(&b.source, NodeId(0), 1)["positions"]["0"], 7);
    }

    #[test]
    fn instances_merge_operator_states_and_run_a_commit_once_all_passed_it() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let ran = std::sync::Arc::new(AtomicUsize::new(0));
        let real = |ran: &std::sync::Arc<AtomicUsize>| {
            let ran = std::sync::Arc::clone(ran);
            Commit(Box::new(move || {
                ran.fetch_add(1, Ordering::SeqCst);
            }))
        };
        let noop = || Commit(Box::new(|| {}));
        let mut a = Alignment::instances(3);
        assert!(a.commit(0, real(&ran)).is_none());
        assert!(a.commit(2, noop()).is_none());
        (a.commit(1, noop()).expect("all passed it").0)();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        // A closed instance no longer holds commits up.
        assert!(a.commit(0, real(&ran)).is_none());
        a.close(1);
        assert!(a.release().is_none());
        (a.commit(2, noop()).expect("the open ones passed it").0)();
        assert_eq!(ran.load(Ordering::SeqCst), 2);

        let mut a = Alignment::instances(2);
        let with = |ops: &[&str]| Barrier {
            epoch: 4,
            source: serde_json::json!({"positions": {"0": 9}}),
            operators: ops.iter().map(|k| (k.to_string(), None)).collect(),
            injected: None,
        };
        assert!(a.barrier(1, with(&["2@1/2:agg"])).is_none());
        let b = a
            .barrier(0, with(&["1:filter", "2@0/2:agg"]))
            .expect("aligned");
        let keys: Vec<&str> = b.operators.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["1:filter", "2@0/2:agg", "2@1/2:agg"]);
        assert_eq!(b.source["positions"]["0"], 9);
    }

    #[test]
    fn caught_up_once_every_input_is() {
        let mut a = Alignment::new(vec![NodeId(0), NodeId(1)]);
        assert!(!a.caught_up(0));
        // Its new rows wait until the other input's replay is done.
        assert!(a.blocked(0) && !a.blocked(1));
        a.close(1);
        assert!(a.check_caught_up());
        assert!(!a.check_caught_up(), "only once");
    }
}
