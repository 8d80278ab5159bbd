//! What SD.Next (pydantic 2, lax mode, as FastAPI validates a request body) accepts for a
//! scalar field, measured against SD.Next's own pydantic: an integer field takes integers,
//! numbers with no fraction (`20.0`), booleans, and strings that spell an integer (`"20"`,
//! `" 20 "`, `"1_000"`, `"20.000"`, `"+5"`); a number field takes numbers, booleans and
//! strings Python's `float()` reads (`"1e3"`, `".5"`, `"nan"`, `"inf"`); a boolean field
//! takes booleans, 0/1 and the words `true/false, yes/no, on/off, t/f, y/n, 1/0` (any case);
//! a string field takes only strings.

use serde_json::Value;

/// The integer value (as a float, for bounds), when the value passes as an integer.
pub fn int(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i as f64)
            } else if let Some(u) = n.as_u64() {
                Some(u as f64)
            } else {
                // A JSON integer too large for 64 bits also arrives as a float here; take
                // any integral value (Python keeps such literals as integers).
                n.as_f64().filter(|f| f.is_finite() && f.fract() == 0.0)
            }
        }
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => int_str(s.trim()),
        _ => None,
    }
}

/// Digits with single underscores between them (`1_000`).
fn digits(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('_')
        && !s.ends_with('_')
        && !s.contains("__")
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'_')
}

fn int_str(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (whole, frac) = match body.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (body, None),
    };
    if !digits(whole) {
        return None;
    }
    // `20.000` passes; `20.`, `20.5` do not.
    if let Some(f) = frac
        && (f.is_empty() || !f.bytes().all(|b| b == b'0'))
    {
        return None;
    }
    let n: f64 = whole.replace('_', "").parse().ok()?;
    Some(if s.starts_with('-') { -n } else { n })
}

/// The number, when the value passes as a number (`NaN` for `"nan"`).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => float_str(s.trim()),
        _ => None,
    }
}

/// Python's `float()` on a string: a decimal with optional exponent, underscores only
/// between digits, or `nan` / `inf` / `infinity` in any case, each with an optional sign.
fn float_str(s: &str) -> Option<f64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let special = match lower.as_str() {
        "nan" => Some(f64::NAN),
        "inf" | "infinity" => Some(f64::INFINITY),
        _ => None,
    };
    if let Some(x) = special {
        return Some(if neg { -x } else { x });
    }
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (lower.as_str(), None),
    };
    let (whole, frac) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let ok_part = |p: &str| p.is_empty() || digits(p);
    if !ok_part(whole)
        || !frac.is_none_or(ok_part)
        || (whole.is_empty() && frac.is_none_or(str::is_empty))
    {
        return None;
    }
    if let Some(e) = exp {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        if !digits(e) {
            return None;
        }
    }
    let x: f64 = body.replace('_', "").parse().ok()?;
    Some(if neg { -x } else { x })
}

/// The boolean, when the value passes as one.
pub fn boolean(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(0.0) => Some(false),
            Some(1.0) => Some(true),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Each row was checked against SD.Next's pydantic (2.13.4, lax mode).
    #[test]
    fn integers_as_pydantic_takes_them() {
        for (v, want) in [
            (json!(20), Some(20.0)),
            (json!("20"), Some(20.0)),
            (json!(" 20 "), Some(20.0)),
            (json!("20.0"), Some(20.0)),
            (json!("20.000"), Some(20.0)),
            (json!(20.0), Some(20.0)),
            (json!(true), Some(1.0)),
            (json!(false), Some(0.0)),
            (json!("1_000"), Some(1000.0)),
            (json!("+5"), Some(5.0)),
            (json!("-5"), Some(-5.0)),
            (json!("0020"), Some(20.0)),
            (json!("-20.0"), Some(-20.0)),
            (json!(20.5), None),
            (json!("20.5"), None),
            (json!("20."), None),
            (json!(".0"), None),
            (json!("2e1"), None),
            (json!("0x10"), None),
            (json!(""), None),
            (json!(" "), None),
            (json!("1__0"), None),
            (json!("_1"), None),
            (json!("1_"), None),
            (json!("1 2"), None),
            (json!("+-1"), None),
            (json!("many"), None),
            (json!([1]), None),
            (json!({"a": 1}), None),
            (json!(null), None),
        ] {
            assert_eq!(int(&v), want, "{v}");
        }
    }

    #[test]
    fn numbers_as_pydantic_takes_them() {
        for (v, ok) in [
            (json!(1), true),
            (json!(1.5), true),
            (json!("1.5"), true),
            (json!(" 1.5"), true),
            (json!("1.5 "), true),
            (json!("1e3"), true),
            (json!(".5"), true),
            (json!("5."), true),
            (json!("+.5"), true),
            (json!("1_0.5"), true),
            (json!("1_000.000_1"), true),
            (json!("nan"), true),
            (json!("NaN"), true),
            (json!("inf"), true),
            (json!("iNf"), true),
            (json!("-Infinity"), true),
            (json!("1e400"), true),
            (json!(true), true),
            (json!(""), false),
            (json!("abc"), false),
            (json!("high"), false),
            (json!("1,5"), false),
            (json!("0x1p3"), false),
            (json!("1e"), false),
            (json!("1__0"), false),
            (json!("1_"), false),
            (json!("_1"), false),
            (json!(" "), false),
            (json!("1 0"), false),
            (json!("."), false),
            (json!(null), false),
            (json!([1.0]), false),
        ] {
            assert_eq!(number(&v).is_some(), ok, "{v}");
        }
        assert_eq!(number(&json!("1e3")), Some(1000.0));
        assert_eq!(number(&json!("-.5")), Some(-0.5));
    }

    #[test]
    fn booleans_as_pydantic_takes_them() {
        for (v, want) in [
            (json!(true), Some(true)),
            (json!("true"), Some(true)),
            (json!("True"), Some(true)),
            (json!("TRUE"), Some(true)),
            (json!("yes"), Some(true)),
            (json!("on"), Some(true)),
            (json!("1"), Some(true)),
            (json!("t"), Some(true)),
            (json!("y"), Some(true)),
            (json!(1), Some(true)),
            (json!(1.0), Some(true)),
            (json!(0), Some(false)),
            (json!(0.0), Some(false)),
            (json!("no"), Some(false)),
            (json!("off"), Some(false)),
            (json!("f"), Some(false)),
            (json!("n"), Some(false)),
            (json!(2), None),
            (json!("abc"), None),
            (json!("maybe"), None),
            (json!(null), None),
        ] {
            assert_eq!(boolean(&v), want, "{v}");
        }
    }
}
