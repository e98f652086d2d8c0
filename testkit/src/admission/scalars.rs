//! Value validations on scalars (`maxLength`, `pattern`, `format`, `minimum`, `enum`, ...),
//! worded as kube-openapi's validator words them and converted to field errors the way
//! apiextensions-apiserver converts them.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use regex::{Regex, RegexBuilder};
use serde_json::{Number, Value, json};

use super::FieldError;
use super::gofmt;

/// Compiles `pattern` once per process with Go's RE2 semantics; a pattern that does not compile
/// yields `None` and the keyword is skipped (the apiserver rejects such a CRD before it ever
/// validates an object).
pub(crate) fn regex(pattern: &str) -> Option<Regex> {
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(PoisonError::into_inner);
    cache
        .entry(pattern.to_owned())
        .or_insert_with(|| {
            RegexBuilder::new(&ascii_perl_classes(pattern))
                .size_limit(64 << 20)
                .build()
                .ok()
        })
        .clone()
}

/// Rewrites `\d`, `\w`, `\s` (and their negations) to the ASCII classes they mean in Go's RE2;
/// Rust's `regex` reads them as Unicode classes, which match more and can grow a bounded
/// repetition such as `[\w]{1,512}` past any size limit.
fn ascii_perl_classes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(class @ ('d' | 'w' | 's' | 'D' | 'W' | 'S')) => {
                    let ascii = match class.to_ascii_lowercase() {
                        'd' => "0-9",
                        'w' => "0-9A-Za-z_",
                        _ => "\\t\\n\\x0C\\r ",
                    };
                    match (in_class, class.is_ascii_uppercase()) {
                        (false, false) => out.push_str(&format!("[{ascii}]")),
                        (false, true) => out.push_str(&format!("[^{ascii}]")),
                        (true, false) => out.push_str(ascii),
                        (true, true) => out.push_str(&format!("[^{ascii}]")),
                    }
                }
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member, not the end.
                let rest = chars.as_str();
                let skip = if rest.starts_with("^]") {
                    2
                } else {
                    usize::from(rest.starts_with(']'))
                };
                for _ in 0..skip {
                    out.extend(chars.next());
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn as_f64(schema: &Value, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

fn as_u64(schema: &Value, key: &str) -> Option<u64> {
    schema.get(key).and_then(Value::as_u64)
}

/// `minLength`, `maxLength` (in characters, as `utf8.RuneCountInString`), `pattern`, `format`.
pub(crate) fn check_string(schema: &Value, s: &str, path: &str, errs: &mut Vec<FieldError>) {
    let chars = s.chars().count() as u64;
    if let Some(max) = as_u64(schema, "maxLength")
        && chars > max
    {
        errs.push(FieldError::too_long(path, json!(s), max));
    }
    if let Some(min) = as_u64(schema, "minLength")
        && chars < min
    {
        errs.push(FieldError::invalid(
            path,
            json!(s),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
        && let Some(re) = regex(pattern)
        && !re.is_match(s)
    {
        errs.push(FieldError::invalid(
            path,
            json!(s),
            format!("{path} in body should match '{pattern}'"),
        ));
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && !format_ok(format, s)
    {
        errs.push(FieldError::type_invalid(
            path,
            json!(s),
            format!(
                "{path} in body must be of type {format}: {}",
                gofmt::quote(s)
            ),
        ));
    }
}

/// The cheap formats; every other format (and `int32`/`int64`) is accepted as the emulator's
/// documented simplification.
fn format_ok(format: &str, s: &str) -> bool {
    const DATE: &str = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])";
    match format {
        "date-time" => regex(&format!(
            r"{DATE}[Tt ]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
        ))
        .is_some_and(|re| re.is_match(s)),
        "date" => regex(&format!("{DATE}$")).is_some_and(|re| re.is_match(s)),
        "uuid" => regex(r"^(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
            .is_some_and(|re| re.is_match(s)),
        "ipv4" => s.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<std::net::Ipv6Addr>().is_ok(),
        _ => true,
    }
}

/// `minimum`, `maximum` (with the boolean `exclusiveMinimum`/`exclusiveMaximum` of OpenAPI
/// v3.0) and `multipleOf`.
pub(crate) fn check_number(schema: &Value, n: &Number, path: &str, errs: &mut Vec<FieldError>) {
    let x = n.as_f64().unwrap_or(0.0);
    let value = Value::Number(n.clone());
    if let Some(max) = as_f64(schema, "maximum") {
        let exclusive = super::schema::flag(schema, "exclusiveMaximum");
        if exclusive && x >= max {
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                format!("{path} in body should be less than {}", gofmt::float(max)),
            ));
        } else if !exclusive && x > max {
            let detail = format!(
                "{path} in body should be less than or equal to {}",
                gofmt::float(max)
            );
            errs.push(FieldError::invalid(path, value.clone(), detail));
        }
    }
    if let Some(min) = as_f64(schema, "minimum") {
        let exclusive = super::schema::flag(schema, "exclusiveMinimum");
        if exclusive && x <= min {
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                format!(
                    "{path} in body should be greater than {}",
                    gofmt::float(min)
                ),
            ));
        } else if !exclusive && x < min {
            let detail = format!(
                "{path} in body should be greater than or equal to {}",
                gofmt::float(min)
            );
            errs.push(FieldError::invalid(path, value.clone(), detail));
        }
    }
    if let Some(m) = as_f64(schema, "multipleOf").filter(|m| *m > 0.0) {
        let q = x / m;
        if (q - q.round()).abs() > 1e-9 {
            errs.push(FieldError::invalid(
                path,
                value,
                format!("{path} in body should be a multiple of {}", gofmt::float(m)),
            ));
        }
    }
}

/// `enum`: `Unsupported value: "x": supported values: "a", "b"` (non-strings JSON-encoded).
pub(crate) fn check_enum(schema: &Value, v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(allowed) = schema.get("enum").and_then(Value::as_array) else {
        return;
    };
    if allowed.iter().any(|a| same(a, v)) {
        return;
    }
    let supported: Vec<String> = allowed
        .iter()
        .map(|a| match a {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    errs.push(FieldError::not_supported(path, v.clone(), &supported));
}

/// Deep equality that, like Go after decoding, treats `1` and `1.0` as the same number.
pub(crate) fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i == j,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, p)| y.get(k).is_some_and(|q| same(p, q)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_errors(schema: Value, s: &str) -> Vec<String> {
        let mut errs = Vec::new();
        check_string(&schema, s, "spec.x", &mut errs);
        errs.iter().map(ToString::to_string).collect()
    }

    fn number_errors(schema: Value, n: Value) -> Vec<String> {
        let mut errs = Vec::new();
        if let Value::Number(n) = n {
            check_number(&schema, &n, "spec.n", &mut errs);
        }
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn max_length_counts_characters_not_bytes() {
        assert!(string_errors(json!({"maxLength": 3}), "äöü").is_empty());
        assert_eq!(
            string_errors(json!({"maxLength": 3}), "äöüß"),
            ["spec.x: Too long: may not be longer than 3"]
        );
    }

    #[test]
    fn a_too_short_string_is_invalid_with_the_openapi_wording() {
        assert_eq!(
            string_errors(json!({"minLength": 1}), ""),
            [r#"spec.x: Invalid value: "": spec.x in body should be at least 1 chars long"#]
        );
    }

    #[test]
    fn a_pattern_mismatch_quotes_the_pattern() {
        assert_eq!(
            string_errors(json!({"pattern": "^[a-z]+$"}), "A1"),
            [r#"spec.x: Invalid value: "A1": spec.x in body should match '^[a-z]+$'"#]
        );
        assert!(string_errors(json!({"pattern": "^[a-z]+$"}), "ab").is_empty());
    }

    #[test]
    fn a_pattern_that_does_not_compile_is_skipped() {
        assert!(string_errors(json!({"pattern": "(unclosed"}), "x").is_empty());
    }

    #[test]
    fn date_time_and_other_cheap_formats_are_checked() {
        assert!(string_errors(json!({"format": "date-time"}), "2024-05-01T10:00:00Z").is_empty());
        assert!(
            string_errors(
                json!({"format": "date-time"}),
                "2024-05-01T10:00:00.5+02:00"
            )
            .is_empty()
        );
        assert_eq!(
            string_errors(json!({"format": "date-time"}), "yesterday"),
            [
                r#"spec.x: Invalid value: "yesterday": spec.x in body must be of type date-time: "yesterday""#
            ]
        );
        assert_eq!(
            string_errors(json!({"format": "ipv4"}), "1.2.3.999").len(),
            1
        );
        assert!(string_errors(json!({"format": "int64"}), "whatever").is_empty());
    }

    #[test]
    fn minimum_and_maximum_print_go_floats() {
        assert_eq!(
            number_errors(json!({"minimum": 900}), json!(100)),
            ["spec.n: Invalid value: 100: spec.n in body should be greater than or equal to 900"]
        );
        assert_eq!(
            number_errors(json!({"maximum": 1_000_000}), json!(2_000_000)),
            [
                "spec.n: Invalid value: 2000000: spec.n in body should be less than or equal to 1e+06"
            ]
        );
        assert!(number_errors(json!({"minimum": 900, "maximum": 43200}), json!(900)).is_empty());
    }

    #[test]
    fn exclusive_bounds_reject_the_bound_itself() {
        assert_eq!(
            number_errors(json!({"minimum": 0, "exclusiveMinimum": true}), json!(0)),
            ["spec.n: Invalid value: 0: spec.n in body should be greater than 0"]
        );
        assert_eq!(
            number_errors(
                json!({"maximum": 1.5, "exclusiveMaximum": true}),
                json!(1.5)
            ),
            ["spec.n: Invalid value: 1.5: spec.n in body should be less than 1.5"]
        );
    }

    #[test]
    fn multiple_of_is_checked() {
        assert_eq!(number_errors(json!({"multipleOf": 5}), json!(12)).len(), 1);
        assert!(number_errors(json!({"multipleOf": 5}), json!(15)).is_empty());
    }

    #[test]
    fn an_enum_miss_lists_the_supported_values() {
        let mut errs = Vec::new();
        check_enum(
            &json!({"enum": ["Delete", "Retain", 3]}),
            &json!("Keep"),
            "spec.p",
            &mut errs,
        );
        assert_eq!(
            errs[0].to_string(),
            r#"spec.p: Unsupported value: "Keep": supported values: "Delete", "Retain", "3""#
        );
        errs.clear();
        check_enum(&json!({"enum": [1]}), &json!(1.0), "spec.p", &mut errs);
        assert!(errs.is_empty());
    }

    #[test]
    fn perl_classes_mean_ascii_as_in_go() {
        let word = regex(r"^[\w-]+$").unwrap();
        assert!(word.is_match("ci_deployer-1"));
        assert!(!word.is_match("déployeur"));
        assert!(regex(r"^\d+$").is_some_and(|r| r.is_match("42") && !r.is_match("٤٢")));
        assert!(regex(r"^\S+$").is_some_and(|r| r.is_match("a") && !r.is_match("a b")));
    }

    #[test]
    fn a_long_bounded_repetition_of_a_word_class_compiles() {
        let arn = regex(r"^arn:aws:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$").unwrap();
        assert!(arn.is_match("arn:aws:iam::123456789012:role/ci-deployer"));
        assert!(!arn.is_match("arn:aws:s3:::bucket"));
    }

    #[test]
    fn the_regex_cache_returns_the_same_pattern() {
        assert!(regex("^a$").is_some_and(|r| r.is_match("a")));
        assert!(regex("^a$").is_some_and(|r| !r.is_match("b")));
    }
}
