//! Go `fmt` renderings of JSON values, so messages read exactly like the apiserver's.
//!
//! The apiserver decodes JSON numbers to `int64` when they are integral and to `float64`
//! otherwise, and prints bad values with `%v` (numbers, booleans), `%q` (strings) or `%#v`
//! (maps and slices). Schema bounds such as `minimum` are `float64` and print with `%v`.

use serde_json::{Number, Value};

/// `%v` of a `float64`: Go's shortest `%g`, which switches to an exponent at 1e+06 and below 1e-04.
pub(crate) fn float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
    } else {
        format!("{f}")
    }
}

/// `%v` of a JSON number as the apiserver holds it (`int64` when integral, else `float64`).
pub(crate) fn number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float(n.as_f64().unwrap_or(0.0))
    }
}

/// `%q` of a string (`strconv.Quote`).
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How `field.Error.ErrorBody` prints a bad value: `%v` for numbers and booleans, `%q` for
/// strings (a JSON `null` prints as the string `"null"`), `%#v` for maps and slices.
pub(crate) fn bad_value(v: &Value) -> String {
    match v {
        Value::Null => quote("null"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Array(_) | Value::Object(_) => sharp(v),
    }
}

/// `%#v` of a decoded JSON value (`map[string]interface {}{...}`, `[]interface {}{...}`).
pub(crate) fn sharp(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => quote(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(sharp).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", quote(k), m.get(k).map(sharp).unwrap_or_default()))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go_percent_v() {
        assert_eq!(float(900.0), "900");
        assert_eq!(float(0.5), "0.5");
        assert_eq!(float(43200.0), "43200");
        assert_eq!(float(1e6), "1e+06");
        assert_eq!(float(1234567.0), "1.234567e+06");
        assert_eq!(float(0.00001), "1e-05");
        assert_eq!(float(-2.5), "-2.5");
    }

    #[test]
    fn bad_values_print_like_field_error_body() {
        assert_eq!(bad_value(&json!(100)), "100");
        assert_eq!(bad_value(&json!("a\"b")), r#""a\"b""#);
        assert_eq!(bad_value(&json!(null)), r#""null""#);
        assert_eq!(bad_value(&json!(true)), "true");
        assert_eq!(
            bad_value(&json!({"b": 1, "a": ["x", null]})),
            r#"map[string]interface {}{"a":[]interface {}{"x", interface {}(nil)}, "b":1}"#
        );
    }

    #[test]
    fn control_characters_are_escaped_like_strconv_quote() {
        assert_eq!(quote("a\u{1}\tb"), r#""a\x01\tb""#);
    }
}
