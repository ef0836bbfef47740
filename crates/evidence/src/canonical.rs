//! RFC 8785 (JSON Canonicalization Scheme): the one byte string a JSON value signs and hashes
//! as. Verification always re-canonicalises the parsed value, so whitespace or key order in a
//! file never matters, and any change to a value always does.

use serde::Serialize;

pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json_canonicalizer::to_vec(value).expect("JSON values always canonicalise")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn sorts_keys_by_utf16_and_formats_numbers_as_es6() {
        let v = json!({"b": 1.0, "a": [1e21, 1e-7, 0.1, -0.0], "é": "x", "\u{10000}": 1, "\u{ffff}": 2});
        let out = String::from_utf8(super::to_vec(&v)).unwrap();
        assert_eq!(
            out,
            "{\"a\":[1e+21,1e-7,0.1,0],\"b\":1,\"é\":\"x\",\"\u{10000}\":1,\"\u{ffff}\":2}"
        );
    }

    #[test]
    fn escapes_only_what_it_must() {
        let v = json!({"s": "қазақ \"q\" \\ \u{1f} /"});
        let out = String::from_utf8(super::to_vec(&v)).unwrap();
        assert_eq!(out, "{\"s\":\"қазақ \\\"q\\\" \\\\ \\u001f /\"}");
    }
}
