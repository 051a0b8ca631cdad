//! `keel cluster status`: the members and their states as etcd holds them.

use super::rebalance::Progress;
use super::{ClusterMap, NodeState};

/// Objects with fewer live copies than wanted (D38): what the live members counted at the end
/// of their last repair pass, as the first holder of each object. Unknown (`null`) while a live
/// member has a pass under way after a membership change (or has not reported one made with
/// the map as it is now), or while a member is down and no member repairs copies
/// (copies = 1: the down member's objects are unavailable, and only it knows how many).
fn under_replicated(map: &ClusterMap) -> Option<u64> {
    let live = |id: &String| map.node(id).is_some_and(|n| n.state != NodeState::Down);
    let shape = map.shape();
    let reports: Vec<Option<u64>> = map
        .under_replicated
        .iter()
        .filter(|(id, _)| live(id))
        .map(|(_, r)| r.filter(|(_, _, was)| *was == shape).map(|(short, _, _)| short))
        .collect();
    if reports.is_empty() {
        return map.nodes.iter().all(|n| n.state != NodeState::Down).then_some(0);
    }
    reports.into_iter().sum()
}

/// The JSON object scripts read (`--json`).
pub fn json(name: &str, map: &ClusterMap) -> String {
    let mut s = format!("{{\"cluster\":{name:?},\"revision\":{},\"nodes\":[", map.revision);
    for (i, n) in map.nodes.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!(
            "{{\"id\":{:?},\"url\":{:?},\"state\":\"{}\",\"gateway\":{},\"reconciling\":{}}}",
            n.id,
            n.url,
            n.state.name(),
            n.gateway,
            map.reconciling.contains(&n.id)
        ));
    }
    let under = under_replicated(map).map_or("null".to_owned(), |n| n.to_string());
    let p = progress(map);
    let eta = p.eta_secs(crate::time::now_ms()).map_or("null".to_owned(), |n| n.to_string());
    let pending: Vec<&String> = map.rebalance.keys().collect();
    s.push_str(&format!(
        "],\"buckets\":{},\"rebalancing\":{},\"rebalance\":{{\"pending\":{pending:?},",
        map.buckets.len(),
        map.rebalancing()
    ));
    s.push_str(&format!(
        "\"moved_objects\":{},\"moved_bytes\":{},\"togo_objects\":{},\"togo_bytes\":{},\"eta_secs\":{eta}}},",
        p.moved_objects, p.moved_bytes, p.togo_objects, p.togo_bytes
    ));
    s.push_str(&format!("\"under_replicated\":{under}}}"));
    s
}

/// Every member's rebalance progress added up (started: the earliest; done: all are).
fn progress(map: &ClusterMap) -> Progress {
    let mut all = Progress { done: !map.rebalancing(), ..Default::default() };
    for (id, text) in &map.progress {
        let p = Progress::decode(text);
        if p.started_ms > 0 && (all.started_ms == 0 || p.started_ms < all.started_ms) {
            all.started_ms = p.started_ms;
        }
        all.moved_objects += p.moved_objects;
        all.moved_bytes += p.moved_bytes;
        if map.rebalance.contains_key(id) {
            all.togo_objects += p.togo_objects;
            all.togo_bytes += p.togo_bytes;
        }
    }
    all
}

/// The table people read.
pub fn text(name: &str, map: &ClusterMap) -> String {
    let mut s = format!("cluster {name}: {} nodes, {} buckets\n", map.nodes.len(), map.buckets.len());
    s.push_str(&format!("{:<24} {:<8} URL\n", "NODE", "STATE"));
    for n in &map.nodes {
        let role = match (n.gateway, map.reconciling.contains(&n.id)) {
            (true, _) => " (gateway)",
            (false, true) => " (reconciling its copies)",
            _ => "",
        };
        s.push_str(&format!("{:<24} {:<8} {}{role}\n", n.id, n.state.name(), n.url));
    }
    if map.rebalancing() {
        let pending: Vec<&str> = map.rebalance.keys().map(String::as_str).collect();
        s.push_str(&format!("rebalancing: yes (on {}): {}\n", pending.join(", "), progress(map).line()));
    } else {
        s.push_str("rebalancing: no\n");
    }
    match under_replicated(map) {
        Some(n) => s.push_str(&format!("under_replicated: {n}\n")),
        None => {
            s.push_str("under_replicated: unknown (a repair pass is under way, or a node is down and only it knows)\n")
        }
    }
    s
}

/// Runs `keel cluster decommission ID`.
pub fn decommission(endpoints: &str, name: &str, id: &str) -> Result<(), String> {
    let endpoints = super::parse_endpoints(endpoints)?;
    println!("{}", super::etcd::decommission(&endpoints, name, id)?);
    Ok(())
}

/// Runs `keel cluster status`.
pub fn run(endpoints: &str, name: &str, as_json: bool) -> Result<(), String> {
    let endpoints = super::parse_endpoints(endpoints)?;
    let map = super::etcd::snapshot(&endpoints, name)?;
    if as_json {
        println!("{}", json(name, &map));
    } else {
        print!("{}", text(name, &map));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{Node, node_hash};
    use super::*;

    #[test]
    fn json_has_the_contracted_fields() {
        let node = |id: &str, state| Node {
            id: id.into(),
            url: format!("http://{id}:1"),
            state,
            gateway: false,
            leaving: false,
            hash: node_hash(id),
        };
        let mut map = ClusterMap { nodes: vec![node("a", NodeState::Active)], ..Default::default() };
        assert_eq!(
            json("keel", &map),
            "{\"cluster\":\"keel\",\"revision\":0,\"nodes\":[{\"id\":\"a\",\"url\":\"http://a:1\",\"state\":\"active\",\"gateway\":false,\"reconciling\":false}],\
             \"buckets\":0,\"rebalancing\":false,\"rebalance\":{\"pending\":[],\"moved_objects\":0,\"moved_bytes\":0,\
             \"togo_objects\":0,\"togo_bytes\":0,\"eta_secs\":0},\"under_replicated\":0}"
        );
        map.nodes.push(node("b", NodeState::Down));
        assert!(json("keel", &map).ends_with("\"under_replicated\":null}"));
        assert!(text("keel", &map).contains("b                        down"));
        // With copies, what the live members count (a down member's report is stale); unknown
        // while a live member's pass is under way.
        let shape = map.shape();
        map.under_replicated.insert("a".into(), Some((3, 1, shape)));
        map.under_replicated.insert("b".into(), Some((100, 0, 0)));
        assert!(json("keel", &map).ends_with("\"under_replicated\":3}"));
        map.under_replicated.insert("a".into(), Some((3, 0, shape ^ 1)));
        assert!(json("keel", &map).ends_with("\"under_replicated\":null}"), "a report from before b went down");
        map.under_replicated.insert("a".into(), None);
        assert!(json("keel", &map).ends_with("\"under_replicated\":null}"));
    }
}
