//! The dependency graph of a plan: one node per step, an edge from each
//! dependency to the step that waits for it. Built from the plain `depends_on`
//! lists a plan carries, so a plan read back from a file gets the same graph.
//!
//! This module only checks and orders; it must not decide what depends on what
//! (that is the planner's job) and must not run anything (that is apply's).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::plan::Step;

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
    nodes: BTreeMap<String, NodeIndex>,
    /// A topological order, stable: among ready steps the earliest in the
    /// plan goes first, so renderings do not change from run to run.
    order: Vec<usize>,
}

impl StepGraph {
    /// Builds the graph and checks that it is a DAG whose edges point at
    /// existing steps.
    pub fn build(steps: &[Step]) -> Result<Self, GraphError> {
        let mut graph = DiGraph::with_capacity(steps.len(), steps.len());
        let mut nodes = BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            let node = graph.add_node(i);
            if nodes.insert(step.id.clone(), node).is_some() {
                return Err(GraphError::DuplicateId(step.id.clone()));
            }
        }
        for step in steps {
            // Every step was inserted in the loop above: indexing cannot fail.
            let to = nodes[&step.id];
            for dep in &step.depends_on {
                let from = nodes
                    .get(dep)
                    .ok_or_else(|| GraphError::UnknownDependency {
                        step: step.id.clone(),
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

/// Kahn's algorithm with the plan position as tie-break; petgraph's own
/// `toposort` is depth-first and its order would shift with unrelated edits.
fn stable_toposort(graph: &DiGraph<usize, ()>, steps: &[Step]) -> Result<Vec<usize>, GraphError> {
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
            .map(|i| steps[i].id.clone())
            .unwrap_or_default();
        return Err(GraphError::Cycle(stuck));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::StepKind;

    fn step(id: &str, deps: &[&str]) -> Step {
        Step {
            id: id.into(),
            kind: StepKind::EksEndpoint,
            account: None,
            region: "r".into(),
            cluster: None,
            vpc_id: None,
            security_group_id: None,
            before: serde_json::Value::Null,
            after: serde_json::Value::Null,
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            reason: String::new(),
            lockout_risk: false,
            role_arn: None,
            fingerprint: String::new(),
            wave: 0,
        }
    }

    #[test]
    fn order_is_topological_and_keeps_plan_order_among_ready_steps() {
        let steps = [
            step("c", &["b"]),
            step("a", &[]),
            step("b", &[]),
            step("d", &["a"]),
        ];
        let g = StepGraph::build(&steps).unwrap();
        let ids: Vec<&str> = g.order().iter().map(|i| steps[*i].id.as_str()).collect();
        assert_eq!(ids, vec!["a", "b", "c", "d"]);
        assert_eq!(g.dependencies("c"), vec![2]);
        assert_eq!(g.dependents("a"), vec![3]);
        assert_eq!(g.ancestors("c"), vec![2]);
    }

    #[test]
    fn broken_plans_are_rejected() {
        assert_eq!(
            StepGraph::build(&[step("a", &["b"]), step("b", &["a"])]).unwrap_err(),
            GraphError::Cycle("a".into())
        );
        assert_eq!(
            StepGraph::build(&[step("a", &["z"])]).unwrap_err(),
            GraphError::UnknownDependency {
                step: "a".into(),
                missing: "z".into()
            }
        );
        assert_eq!(
            StepGraph::build(&[step("a", &[]), step("a", &[])]).unwrap_err(),
            GraphError::DuplicateId("a".into())
        );
    }
}
