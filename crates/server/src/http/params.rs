//! SessionKeyServer's parameter decoding, reproduced exactly.
//!
//! Hand-written because no form decoder behaves like the original: names are
//! *not* percent-decoded (`%74oken=` is not `token`), a piece without `=` is
//! dropped (`?realm&…` has no realm), values are decoded like
//! `java.net.URLDecoder` (`+` is a space), and the last duplicate wins.

use percent_encoding::percent_decode;
use std::collections::HashMap;

/// Most parameters one request may carry, query and body together. The
/// protocol uses at most seven; the cap bounds the work an attacker can make a
/// worker do per request (the body limit alone allows hundreds of thousands).
pub const MAX_PARAMS: usize = 256;

/// Decoded parameters of one request.
///
/// One map from name to (value, came from the URL): every piece costs one
/// hash lookup, so decoding is linear in the input. (An earlier version kept
/// the URL names in a list searched per piece, which was quadratic.)
#[derive(Debug, Default, Clone)]
pub struct Params {
    values: HashMap<String, (String, bool)>,
    pieces: usize,
}

/// Why a query string or form body was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// A value with a malformed percent escape (`%zz`), which the original's
    /// HTTP layer rejected with 400 before its handler ran.
    #[error("malformed percent-encoding")]
    MalformedEscape,
    /// More than [`MAX_PARAMS`] `name=value` pieces.
    #[error("too many parameters (at most {MAX_PARAMS})")]
    TooMany,
}

fn decode_value(raw: &str) -> Result<String, ParamError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(ParamError::MalformedEscape);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if !raw.contains(['+', '%']) {
        return Ok(raw.to_owned());
    }
    let plus_as_space = raw.replace('+', " ");
    Ok(percent_decode(plus_as_space.as_bytes())
        .decode_utf8_lossy()
        .into_owned())
}

impl Params {
    /// Adds the pieces of a query string or form body; later pieces win.
    pub fn add(&mut self, text: &str, from_query: bool) -> Result<(), ParamError> {
        for piece in text.split('&') {
            let Some((name, raw)) = piece.split_once('=') else {
                continue;
            };
            self.pieces += 1;
            if self.pieces > MAX_PARAMS {
                return Err(ParamError::TooMany);
            }
            let value = decode_value(raw)?;
            self.values.insert(name.to_owned(), (value, from_query));
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|(v, _)| v.as_str())
    }

    /// Whether the (final) value of `name` came from the URL.
    pub fn in_query(&self, name: &str) -> bool {
        self.values.get(name).is_some_and(|(_, q)| *q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Params {
        let mut p = Params::default();
        p.add(q, true).unwrap();
        p
    }

    #[test]
    fn matches_the_original() {
        let p = parse("realm=a+b%20c&token=x&token=y&%74oken=z&flag&user=");
        assert_eq!(p.get("realm"), Some("a b c"));
        assert_eq!(p.get("token"), Some("y"), "last duplicate wins");
        assert_eq!(p.get("%74oken"), Some("z"), "names are not decoded");
        assert_eq!(p.get("flag"), None, "a piece without = is dropped");
        assert_eq!(p.get("user"), Some(""));
        assert_eq!(parse("realm&token=x").get("realm"), None);
        assert_eq!(parse("realm=%C3%A9").get("realm"), Some("é"));
        assert_eq!(parse("user=eve%0Aadmin").get("user"), Some("eve\nadmin"));
        assert_eq!(parse("a=b=c").get("a"), Some("b=c"));
    }

    #[test]
    fn malformed_escapes_are_refused() {
        let mut p = Params::default();
        assert_eq!(p.add("realm=%zz", true), Err(ParamError::MalformedEscape));
        assert_eq!(p.add("realm=%4", true), Err(ParamError::MalformedEscape));
        assert_eq!(p.add("realm=abc%", true), Err(ParamError::MalformedEscape));
    }

    #[test]
    fn parameter_count_is_capped_across_query_and_body() {
        let half: Vec<String> = (0..MAX_PARAMS / 2).map(|i| format!("n{i}=v")).collect();
        let mut p = Params::default();
        p.add(&half.join("&"), true).unwrap();
        p.add(&half.join("&"), false).unwrap();
        assert_eq!(p.add("one=more", false), Err(ParamError::TooMany));
        // Pieces without `=` are dropped, not counted.
        let mut p = Params::default();
        p.add(&"x&".repeat(10_000), true).unwrap();
    }

    #[test]
    fn body_overrides_query_and_is_tracked() {
        let mut p = Params::default();
        p.add("realm=r&pwd=inurl", true).unwrap();
        assert!(p.in_query("pwd"));
        p.add("pwd=inbody", false).unwrap();
        assert_eq!(p.get("pwd"), Some("inbody"));
        assert!(!p.in_query("pwd"));
        assert!(p.in_query("realm"));
    }

    mod properties {
        use super::super::*;
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]

            /// Values survive percent-encoding in any position, with spaces
            /// written as `+` or `%20`, and the last duplicate wins.
            #[test]
            fn encoded_values_come_back(
                pairs in proptest::collection::vec(("[a-z_]{1,8}", ".{0,24}", any::<bool>()), 1..8)
            ) {
                let mut query = Vec::new();
                let mut expect = std::collections::HashMap::new();
                for (name, value, plus) in &pairs {
                    let mut encoded = utf8_percent_encode(value, NON_ALPHANUMERIC).to_string();
                    if *plus {
                        encoded = encoded.replace("%20", "+");
                    }
                    query.push(format!("{name}={encoded}"));
                    expect.insert(name.clone(), value.clone());
                }
                let mut p = Params::default();
                p.add(&query.join("&"), true).unwrap();
                for (name, value) in &expect {
                    prop_assert_eq!(p.get(name), Some(value.as_str()));
                }
            }

            /// Arbitrary text is decoded or refused, never a panic.
            #[test]
            fn never_panics(text in prop_oneof![".{0,64}", "([a-z%+=&]{0,3}[0-9A-Fa-f]{0,2}){0,40}"]) {
                let mut p = Params::default();
                let _ = p.add(&text, true);
            }

            /// However the pieces are split between URL and body, more than
            /// the cap is refused and the cap itself is accepted.
            #[test]
            fn the_cap_holds(total in 0usize..600, in_query in 0usize..600) {
                let in_query = in_query.min(total);
                let piece = |i: usize| format!("n{i}=v");
                let query: Vec<String> = (0..in_query).map(piece).collect();
                let body: Vec<String> = (in_query..total).map(piece).collect();
                let mut p = Params::default();
                let result = p
                    .add(&query.join("&"), true)
                    .and_then(|()| p.add(&body.join("&"), false));
                prop_assert_eq!(result.is_ok(), total <= MAX_PARAMS);
            }
        }
    }
}
