//! Strongly connected components of a graph given as adjacency lists: the cycles that the
//! checker's nesting limit and the Rust generator's boxing both reason about.

/// The strongly connected components of `edges` (node `n` has an edge to each of `edges[n]`),
/// by Tarjan's algorithm without recursion, so that long chains cannot overflow the stack.
///
/// Each component lists its nodes in the order the algorithm completes them, and the
/// components come in reverse topological order: a component comes after every component it
/// reaches. Linear in nodes and edges.
pub fn strongly_connected(edges: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let count = edges.len();
    let mut order = vec![usize::MAX; count];
    let mut low = vec![0; count];
    let mut on_stack = vec![false; count];
    let mut stack = Vec::new();
    let mut components = Vec::new();
    let mut next_order = 0;
    for root in 0..count {
        if order[root] != usize::MAX {
            continue;
        }
        // (node, index of the next edge to follow)
        let mut walk = vec![(root, 0usize)];
        order[root] = next_order;
        low[root] = next_order;
        next_order += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut edge)) = walk.last_mut() {
            if let Some(&next) = edges[node].get(*edge) {
                *edge += 1;
                if order[next] == usize::MAX {
                    order[next] = next_order;
                    low[next] = next_order;
                    next_order += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    walk.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(order[next]);
                }
                continue;
            }
            walk.pop();
            if let Some(&(parent, _)) = walk.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == order[node] {
                let mut members = Vec::new();
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    members.push(member);
                    if member == node {
                        break;
                    }
                }
                components.push(members);
            }
        }
    }
    components
}

/// Each node's component: its index in what [`strongly_connected`] returned.
pub fn component_of(components: &[Vec<usize>], count: usize) -> Vec<usize> {
    let mut component = vec![usize::MAX; count];
    for (id, members) in components.iter().enumerate() {
        for &member in members {
            component[member] = id;
        }
    }
    component
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycles_are_one_component_and_come_after_what_they_reach() {
        // 0 → 1 ⇄ 2 → 3, and 4 alone.
        let edges = vec![vec![1], vec![2], vec![1, 3], vec![], vec![]];
        let components = strongly_connected(&edges);
        let component = component_of(&components, edges.len());
        assert_eq!(component[1], component[2]);
        assert_eq!(components.len(), 4);
        assert!(component[3] < component[1] && component[1] < component[0]);
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let edges: Vec<Vec<usize>> = (0..200_000).map(|n| vec![n + 1]).chain([vec![]]).collect();
        assert_eq!(strongly_connected(&edges).len(), 200_001);
    }
}
