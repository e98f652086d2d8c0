use serde_json::json;

use super::*;

/// A tree rooted at `ci` from `(namespace, parent label)` pairs.
fn tree(namespaces: &[(&str, Option<&str>)]) -> Tree {
    let mut tree = Tree::new("ci");
    for (ns, parent) in namespaces {
        let mut labels = Labels::new();
        if let Some(p) = parent {
            labels.insert(PARENT_LABEL.into(), p.to_string());
        }
        tree.upsert(*ns, labels);
    }
    tree
}

fn three_levels() -> Tree {
    tree(&[
        ("ci", None),
        ("platform", Some("ci")),
        ("team-a", Some("platform")),
        ("team-b", Some("platform")),
        ("loose", None),
    ])
}

fn github(extra: serde_json::Value) -> ConnectionSpec {
    let mut spec = json!({"githubApp": {"appId": "1", "privateKey": {"name": "k", "key": "k"}}});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(spec).unwrap()
}

fn aws() -> ConnectionSpec {
    serde_json::from_value(
        json!({"aws": {"region": "eu-west-1", "credentials": {"defaultChain": {}}}}),
    )
    .unwrap()
}

#[test]
fn a_namespace_without_a_parent_label_hangs_under_the_root() {
    assert_eq!(three_levels().ancestry("loose").unwrap(), ["loose", "ci"]);
}

#[test]
fn ancestry_walks_parent_labels_up_to_the_root() {
    assert_eq!(
        three_levels().ancestry("team-a").unwrap(),
        ["team-a", "platform", "ci"]
    );
}

#[test]
fn the_root_is_its_own_whole_path_even_with_a_parent_label() {
    let t = tree(&[("ci", Some("elsewhere"))]);
    assert_eq!(t.ancestry("ci").unwrap(), ["ci"]);
}

#[test]
fn the_root_need_not_exist_to_end_a_path() {
    let t = tree(&[("team-a", None)]);
    assert_eq!(t.ancestry("team-a").unwrap(), ["team-a", "ci"]);
}

#[test]
fn a_dangling_parent_is_reported_with_the_path() {
    let t = tree(&[("team-a", Some("gone"))]);
    let err = t.ancestry("team-a").unwrap_err();
    assert_eq!(
        err,
        HierarchyError::MissingParent {
            child: "team-a".into(),
            parent: "gone".into(),
            path: vec!["team-a".into(), "gone".into()],
        }
    );
    assert!(err.to_string().contains("team-a → gone"), "{err}");
}

#[test]
fn a_cycle_is_reported_with_the_path_that_closes_it() {
    let t = tree(&[("a", Some("b")), ("b", Some("c")), ("c", Some("a"))]);
    let err = t.ancestry("a").unwrap_err();
    assert_eq!(
        err.to_string(),
        "namespace parents form a cycle: a → b → c → a"
    );
}

#[test]
fn a_namespace_naming_itself_is_a_cycle() {
    let t = tree(&[("a", Some("a"))]);
    assert!(matches!(t.ancestry("a"), Err(HierarchyError::Cycle { .. })));
}

#[test]
fn thirty_two_levels_are_allowed_and_thirty_three_are_too_deep() {
    let names: Vec<String> = (0..=33).map(|i| format!("n{i}")).collect();
    let mut pairs: Vec<(&str, Option<&str>)> = vec![(names[0].as_str(), None)];
    for i in 1..names.len() {
        pairs.push((names[i].as_str(), Some(names[i - 1].as_str())));
    }
    let t = tree(&pairs);
    // n31 is 32 links below the root (n31 → ... → n0 → ci).
    assert_eq!(t.ancestry("n31").unwrap().len(), 33);
    assert!(matches!(
        t.ancestry("n32"),
        Err(HierarchyError::TooDeep { .. })
    ));
}

#[test]
fn an_unknown_namespace_has_no_ancestry() {
    assert!(matches!(
        three_levels().ancestry("nope"),
        Err(HierarchyError::NamespaceNotFound { .. })
    ));
}

#[test]
fn the_nearest_connection_shadows_those_above() {
    let (near, far) = (github(json!({})), github(json!({})));
    let found = resolve(&three_levels(), "team-a", "acme", |ns| match ns {
        "platform" => Some(&near),
        "ci" => Some(&far),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        found,
        Resolution {
            namespace: "platform".into(),
            distance: 1
        }
    );
}

#[test]
fn a_root_connection_is_visible_everywhere() {
    let root = github(json!({}));
    for ns in ["ci", "platform", "team-a", "team-b", "loose"] {
        let found = resolve(&three_levels(), ns, "acme", |n| {
            (n == "ci").then_some(&root)
        });
        assert_eq!(found.unwrap().namespace, "ci", "from {ns}");
    }
}

#[test]
fn a_missing_connection_lists_the_namespaces_searched() {
    let err = resolve(&three_levels(), "team-a", "acme", |_| None).unwrap_err();
    assert_eq!(err.reason(), "ConnectionNotFound");
    assert_eq!(
        err.to_string(),
        "no Connection acme in team-a, platform, ci"
    );
}

#[test]
fn a_connection_not_for_sub_projects_serves_only_its_own_namespace() {
    let closed = github(json!({"availableForSubProjects": false}));
    let lookup = |ns: &str| (ns == "platform").then_some(&closed);
    assert!(resolve(&three_levels(), "platform", "acme", lookup).is_ok());
    let err = resolve(&three_levels(), "team-a", "acme", lookup).unwrap_err();
    assert_eq!(err.reason(), "ConnectionNotAvailable");
    assert_eq!(
        err.to_string(),
        "Connection platform/acme is not available to namespace team-a: it is not available for sub-projects (spec.availableForSubProjects)"
    );
}

#[test]
fn aws_connections_are_not_for_sub_projects_by_default() {
    let spec = aws();
    let err = resolve(&three_levels(), "team-a", "aws", |ns| {
        (ns == "ci").then_some(&spec)
    });
    assert!(matches!(
        err,
        Err(ResolveError::NotAvailable {
            why: Unavailable::NotForSubProjects,
            ..
        })
    ));
}

#[test]
fn allowed_namespaces_must_select_the_tokens_namespace() {
    let mut t = three_levels();
    let mut labels = t.labels("team-a").unwrap().clone();
    labels.insert("team".into(), "payments".into());
    t.upsert("team-a", labels);
    let guarded = github(json!({"allowedNamespaces": {"matchLabels": {"team": "payments"}}}));
    let lookup = |ns: &str| (ns == "ci").then_some(&guarded);
    assert!(resolve(&t, "team-a", "acme", lookup).is_ok());
    let err = resolve(&t, "team-b", "acme", lookup).unwrap_err();
    assert!(
        err.to_string()
            .contains("spec.allowedNamespaces does not select"),
        "{err}"
    );
}

#[test]
fn allowed_namespaces_does_not_restrict_the_connections_own_namespace() {
    let guarded = github(json!({"allowedNamespaces": {"matchLabels": {"team": "payments"}}}));
    let found = resolve(&three_levels(), "ci", "acme", |ns| {
        (ns == "ci").then_some(&guarded)
    });
    assert!(found.is_ok());
}

#[test]
fn an_invalid_selector_makes_the_connection_unavailable_with_the_parse_error() {
    let bad = github(json!({"allowedNamespaces": {"matchExpressions": [
        {"key": "team", "operator": "Near", "values": ["x"]}
    ]}}));
    let err = resolve(&three_levels(), "team-a", "acme", |ns| {
        (ns == "ci").then_some(&bad)
    });
    assert!(matches!(
        err,
        Err(ResolveError::NotAvailable {
            why: Unavailable::InvalidSelector(_),
            ..
        })
    ));
}

#[test]
fn a_broken_tree_is_an_invalid_hierarchy() {
    let t = tree(&[("team-a", Some("gone"))]);
    let err = resolve(&t, "team-a", "acme", |_| None).unwrap_err();
    assert_eq!(err.reason(), "InvalidHierarchy");
}

#[test]
fn the_subtree_of_a_namespace_holds_every_descendant() {
    let t = three_levels();
    assert_eq!(t.subtree("platform"), ["platform", "team-a", "team-b"]);
    assert_eq!(t.subtree("ci").len(), 5);
}

#[test]
fn relabelling_moves_a_namespace_to_another_subtree() {
    let mut t = three_levels();
    t.upsert(
        "team-a",
        Labels::from([(PARENT_LABEL.to_string(), "loose".to_string())]),
    );
    assert_eq!(t.subtree("loose"), ["loose", "team-a"]);
    assert_eq!(t.subtree("platform"), ["platform", "team-b"]);
}
