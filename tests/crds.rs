//! The committed CRDs in `crds/` are exactly what the code generates.

use std::path::Path;

use patchbay::api::crd;

fn committed_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/crds"))
}

#[test]
fn committed_crds_match_the_generated_ones() {
    let stale = crd::stale_files(committed_dir());
    assert!(
        stale.is_empty(),
        "crds/{} differ from the Rust types; regenerate them with `{}` and commit the result",
        stale.join(", crds/"),
        crd::REGENERATE
    );
}

#[test]
fn the_charts_crds_match_the_generated_ones() {
    let chart = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/charts/patchbay/files/crds"
    ));
    let stale = crd::stale_files(chart);
    assert!(
        stale.is_empty(),
        "charts/patchbay/files/crds/{} differ from the Rust types; regenerate them with `{}`",
        stale.join(", charts/patchbay/files/crds/"),
        crd::REGENERATE
    );
}

#[test]
fn a_changed_field_makes_the_staleness_check_fail() {
    let dir = std::env::temp_dir().join(format!("patchbay-crds-{}", std::process::id()));
    crd::write_all(&dir).unwrap();
    assert!(crd::stale_files(&dir).is_empty());

    let file = dir.join("vcsauthtoken.yaml");
    let edited =
        std::fs::read_to_string(&file)
            .unwrap()
            .replacen("durationSeconds:", "durationSecs:", 1);
    std::fs::write(&file, edited).unwrap();

    assert_eq!(crd::stale_files(&dir), vec!["vcsauthtoken.yaml"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn crd_command_prints_both_crds_as_one_yaml_stream() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patchbay"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_str_multiple(&text).unwrap();
    let names: Vec<&str> = docs
        .iter()
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["connections.patchbay.dev", "vcsauthtokens.patchbay.dev"]
    );
}

#[test]
fn both_crds_have_short_names_category_status_and_printer_columns() {
    for (file, crd) in crd::all() {
        let names = &crd.spec.names;
        assert_eq!(
            names.categories.as_deref(),
            Some(&["patchbay".to_string()][..]),
            "{file}"
        );
        assert_eq!(names.short_names.as_ref().map(Vec::len), Some(1), "{file}");
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        assert!(
            version.subresources.as_ref().unwrap().status.is_some(),
            "{file}"
        );
        let columns: Vec<&str> = version
            .additional_printer_columns
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert!(
            columns.contains(&"Ready") && columns.contains(&"Age"),
            "{file}: {columns:?}"
        );
    }
}

#[test]
fn every_schema_property_has_a_description_for_kubectl_explain() {
    fn walk(path: &str, schema: &serde_json::Value, missing: &mut Vec<String>) {
        if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
            for (name, sub) in props {
                let here = format!("{path}.{name}");
                let top_level = matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
                if sub.get("description").is_none() && !(path.is_empty() && top_level) {
                    missing.push(here.clone());
                }
                walk(&here, sub, missing);
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(sub) = schema.get(key) {
                walk(&format!("{path}[]"), sub, missing);
            }
        }
    }
    for (file, crd) in crd::all() {
        let schema = serde_json::to_value(&crd.spec.versions[0].schema).unwrap();
        let mut missing = Vec::new();
        walk("", &schema["openAPIV3Schema"], &mut missing);
        assert!(
            missing.is_empty(),
            "{file}: fields without description: {missing:?}"
        );
    }
}

#[test]
fn the_expires_column_prints_the_time_not_an_age() {
    // kubectl prints a `date` column as the time since; a future expiry would read `<invalid>`.
    let (_, crd) = crd::all().remove(1);
    let columns = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap();
    let expires = columns.iter().find(|c| c.name == "Expires").unwrap();
    assert_eq!(expires.type_, "string");
}
