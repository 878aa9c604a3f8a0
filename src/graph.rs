//! The dependency graph of a plan: one node per step, an edge from each
//! dependency to the step that waits for it. Built from plain `(id,
//! depends_on)` pairs, the lists a plan carries, so a plan read back from a
//! file gets the same graph; it knows nothing else of steps.
//!
//! This module only checks and orders; it must not decide what depends on what
//! (that is the planner's job) and must not run anything (that is apply's).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

/// One node as the graph sees it: its id and the ids it waits for.
pub type Node<'a> = (&'a str, &'a [String]);

/// Why a list of steps is not a valid graph. Only a plan edited by hand (or
/// written by another version) can hit these; `plan::plan` never does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    #[error("step `{0}` appears more than once in the plan")]
    DuplicateId(String),
    #[error("step `{step}` depends on `{missing}`, which is not in the plan")]
    UnknownDependency { step: String, missing: String },
    #[error("steps depend on each other in a cycle, through `{0}`")]
    Cycle(String),
}

/// A checked DAG over a plan's steps. Node weights are indices into the
/// step slice the graph was built from.
#[derive(Clone, Debug)]
pub struct StepGraph {
    pub graph: DiGraph<usize, ()>,
    nodes: HashMap<String, NodeIndex>,
    /// A topological order, stable: among ready steps the earliest in the
    /// plan goes first, so renderings do not change from run to run.
    order: Vec<usize>,
}

impl StepGraph {
    /// Builds the graph and checks that it is a DAG whose edges point at
    /// existing steps.
    pub fn build(steps: &[Node<'_>]) -> Result<Self, GraphError> {
        let mut graph = DiGraph::with_capacity(steps.len(), steps.len());
        let mut nodes = HashMap::with_capacity(steps.len());
        for (i, (id, _)) in steps.iter().enumerate() {
            let node = graph.add_node(i);
            if nodes.insert(id.to_string(), node).is_some() {
                return Err(GraphError::DuplicateId(id.to_string()));
            }
        }
        for (id, depends_on) in steps {
            // Every step was inserted in the loop above: indexing cannot fail.
            let to = nodes[*id];
            for dep in depends_on.iter() {
                let from = nodes
                    .get(dep)
                    .ok_or_else(|| GraphError::UnknownDependency {
                        step: id.to_string(),
                        missing: dep.clone(),
                    })?;
                graph.update_edge(*from, to, ());
            }
        }
        let order = stable_toposort(&graph, steps)?;
        Ok(StepGraph {
            graph,
            nodes,
            order,
        })
    }

    /// Indices (into the steps) in a stable topological order.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    pub fn node(&self, id: &str) -> Option<NodeIndex> {
        self.nodes.get(id).copied()
    }

    /// Indices of the steps that `id` waits for, directly.
    pub fn dependencies(&self, id: &str) -> Vec<usize> {
        self.neighbours(id, Direction::Incoming)
    }

    /// Indices of the steps that wait for `id`, directly.
    pub fn dependents(&self, id: &str) -> Vec<usize> {
        self.neighbours(id, Direction::Outgoing)
    }

    /// Indices of every step `id` waits for, directly or not.
    pub fn ancestors(&self, id: &str) -> Vec<usize> {
        let Some(start) = self.node(id) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.graph.node_count()];
        let mut stack = vec![start];
        let mut out = Vec::new();
        while let Some(n) = stack.pop() {
            for p in self.graph.neighbors_directed(n, Direction::Incoming) {
                if !seen[p.index()] {
                    seen[p.index()] = true;
                    out.push(self.graph[p]);
                    stack.push(p);
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn neighbours(&self, id: &str, dir: Direction) -> Vec<usize> {
        let Some(n) = self.node(id) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = self
            .graph
            .neighbors_directed(n, dir)
            .map(|m| self.graph[m])
            .collect();
        out.sort_unstable();
        out
    }
}

/// Whether every step comes after the steps it waits for (and every id is
/// unique, every dependency known): the stable order is then the steps' own,
/// since the earliest ready step is always the next one. The planner emits
/// its steps so; this check is one map of ids, not a graph.
pub fn in_dependency_order(steps: &[Node<'_>]) -> bool {
    let mut before: HashSet<&str> = HashSet::with_capacity(steps.len());
    steps.iter().all(|(id, depends_on)| {
        depends_on.iter().all(|d| before.contains(d.as_str())) && before.insert(id)
    })
}

/// Kahn's algorithm with the plan position as tie-break; petgraph's own
/// `toposort` is depth-first and its order would shift with unrelated edits.
fn stable_toposort(
    graph: &DiGraph<usize, ()>,
    steps: &[Node<'_>],
) -> Result<Vec<usize>, GraphError> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| graph.neighbors_directed(n, Direction::Incoming).count())
        .collect();
    let mut ready: BinaryHeap<Reverse<usize>> = graph
        .node_indices()
        .filter(|n| indegree[n.index()] == 0)
        .map(|n| Reverse(graph[n]))
        .collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        // Node indices equal step indices: nodes were added in step order.
        for m in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            indegree[m.index()] -= 1;
            if indegree[m.index()] == 0 {
                ready.push(Reverse(graph[m]));
            }
        }
    }
    if order.len() < steps.len() {
        let stuck = (0..steps.len())
            .find(|i| indegree[*i] > 0)
            .map(|i| steps[i].0.to_string())
            .unwrap_or_default();
        return Err(GraphError::Cycle(stuck));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(steps: &[(&str, Vec<String>)]) -> Result<StepGraph, GraphError> {
        let nodes: Vec<Node<'_>> = steps.iter().map(|(id, d)| (*id, d.as_slice())).collect();
        StepGraph::build(&nodes)
    }

    fn step<'a>(id: &'a str, deps: &[&str]) -> (&'a str, Vec<String>) {
        (id, deps.iter().map(|d| d.to_string()).collect())
    }

    #[test]
    fn order_is_topological_and_keeps_plan_order_among_ready_steps() {
        let steps = [
            step("c", &["b"]),
            step("a", &[]),
            step("b", &[]),
            step("d", &["a"]),
        ];
        let g = build(&steps).unwrap();
        let ids: Vec<&str> = g.order().iter().map(|i| steps[*i].0).collect();
        assert_eq!(ids, vec!["a", "b", "c", "d"]);
        assert_eq!(g.dependencies("c"), vec![2]);
        assert_eq!(g.dependents("a"), vec![3]);
        assert_eq!(g.ancestors("c"), vec![2]);
    }

    #[test]
    fn broken_plans_are_rejected() {
        assert_eq!(
            build(&[step("a", &["b"]), step("b", &["a"])]).unwrap_err(),
            GraphError::Cycle("a".into())
        );
        assert_eq!(
            build(&[step("a", &["z"])]).unwrap_err(),
            GraphError::UnknownDependency {
                step: "a".into(),
                missing: "z".into()
            }
        );
        assert_eq!(
            build(&[step("a", &[]), step("a", &[])]).unwrap_err(),
            GraphError::DuplicateId("a".into())
        );
    }

    #[test]
    fn the_steps_own_order_is_taken_only_when_it_is_the_stable_order() {
        let cases: Vec<Vec<(&str, Vec<String>)>> = vec![
            vec![step("a", &[]), step("b", &["a"]), step("c", &["a", "b"])],
            vec![step("b", &[]), step("a", &[]), step("c", &["b"])],
            vec![step("c", &["b"]), step("a", &[]), step("b", &[])],
            vec![step("a", &["b"]), step("b", &[])],
            vec![step("a", &[]), step("b", &["z"])],
            vec![step("a", &[]), step("a", &[])],
            vec![step("a", &["a"])],
        ];
        for steps in cases {
            let nodes: Vec<Node<'_>> = steps.iter().map(|(id, d)| (*id, d.as_slice())).collect();
            let own: Vec<usize> = (0..steps.len()).collect();
            match build(&steps) {
                // In order exactly when the stable order is the own order.
                Ok(g) => assert_eq!(in_dependency_order(&nodes), g.order() == own, "{steps:?}"),
                // A broken list is never taken as in order.
                Err(_) => assert!(!in_dependency_order(&nodes), "{steps:?}"),
            }
        }
    }
}
