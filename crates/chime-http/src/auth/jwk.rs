//! Which keys of a JWKS (RFC 7517) may verify Chime's bearer tokens, and with which algorithm.
//!
//! The KEY decides the algorithm, never the token: a key's `alg` when the JWKS names one,
//! else its `kty`/`crv` (RSA: RS256, EC P-256: ES256, P-384: ES384, OKP Ed25519: EdDSA).
//! Symmetric (`oct`) keys are refused whatever they claim, so no JWKS can make an HMAC
//! secret out of public material; so are encryption keys (`use: enc`), keys without a `kid`,
//! keys whose `alg` does not fit their type, and points of the wrong length. Each key is read
//! on its own, so one key this code does not know (X25519, RSA-OAEP) does not hide the others.

use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// A verification key from a JWKS.
#[derive(Clone)]
pub struct Jwk {
    pub kid: String,
    pub key: DecodingKey,
    pub algorithm: Algorithm,
}

/// Why a JWK was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejected(pub String);

fn rejected(why: impl Into<String>) -> Rejected {
    Rejected(why.into())
}

/// The usable keys of a JWKS document and, for the log, why each other key was left out.
pub fn parse_set(document: &Value) -> Result<(Vec<Jwk>, Vec<Rejected>), Rejected> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| rejected("the JWKS has no `keys` array"))?;
    let mut usable = Vec::new();
    let mut refused = Vec::new();
    for key in keys {
        match parse_key(key) {
            Ok(jwk) if usable.iter().any(|k: &Jwk| k.kid == jwk.kid) => refused.push(rejected(
                format!("kid {}: appears twice; the first is used", jwk.kid),
            )),
            Ok(jwk) => usable.push(jwk),
            Err(why) => refused.push(why),
        }
    }
    Ok((usable, refused))
}

/// One JWK as a verification key, or why it cannot be one.
pub fn parse_key(jwk: &Value) -> Result<Jwk, Rejected> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    let kid = field("kid")
        .filter(|k| !k.is_empty())
        .ok_or_else(|| rejected("a key without a kid"))?
        .to_owned();
    let why = |detail: &str| rejected(format!("kid {kid}: {detail}"));
    if let Some(usage) = jwk.get("use") {
        if usage.as_str() != Some("sig") {
            return Err(why("not a signature key (`use` is not `sig`)"));
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
        if !verifies {
            return Err(why("`key_ops` does not include `verify`"));
        }
    }
    let alg = match jwk.get("alg") {
        None => None,
        Some(Value::String(alg)) => Some(alg.as_str()),
        Some(_) => return Err(why("`alg` is not a string")),
    };
    let kty = field("kty").ok_or_else(|| why("no `kty`"))?;
    let (key, algorithm) = match kty {
        "RSA" => {
            let algorithm = match alg {
                None | Some("RS256") => Algorithm::RS256,
                Some("RS384") => Algorithm::RS384,
                Some("RS512") => Algorithm::RS512,
                Some("PS256") => Algorithm::PS256,
                Some("PS384") => Algorithm::PS384,
                Some("PS512") => Algorithm::PS512,
                Some(other) => return Err(why(&format!("`alg` {other} is not for an RSA key"))),
            };
            let (n, e) = field("n")
                .zip(field("e"))
                .ok_or_else(|| why("an RSA key needs `n` and `e`"))?;
            let key = DecodingKey::from_rsa_components(n, e)
                .map_err(|e| why(&format!("bad RSA components: {e}")))?;
            (key, algorithm)
        }
        "EC" => {
            let (algorithm, size) = match field("crv") {
                Some("P-256") => (Algorithm::ES256, 32),
                Some("P-384") => (Algorithm::ES384, 48),
                other => {
                    return Err(why(&format!(
                        "unsupported EC curve {}",
                        other.unwrap_or("(none)")
                    )))
                }
            };
            if alg.is_some_and(|a| a != name(algorithm)) {
                return Err(why("`alg` does not fit the key's curve"));
            }
            let (x, y) = field("x")
                .zip(field("y"))
                .ok_or_else(|| why("an EC key needs `x` and `y`"))?;
            if decoded_len(x) != Some(size) || decoded_len(y) != Some(size) {
                return Err(why("EC coordinates of the wrong length"));
            }
            let key = DecodingKey::from_ec_components(x, y)
                .map_err(|e| why(&format!("bad EC components: {e}")))?;
            (key, algorithm)
        }
        "OKP" => {
            if field("crv") != Some("Ed25519") {
                return Err(why("unsupported OKP curve (only Ed25519 signs)"));
            }
            // `Ed25519` is the fully-specified name (RFC 9864) for the same signatures.
            if alg.is_some_and(|a| a != "EdDSA" && a != "Ed25519") {
                return Err(why("`alg` does not fit an Ed25519 key"));
            }
            let x = field("x").ok_or_else(|| why("an OKP key needs `x`"))?;
            if decoded_len(x) != Some(32) {
                return Err(why("an Ed25519 key is 32 bytes"));
            }
            let key = DecodingKey::from_ed_components(x)
                .map_err(|e| why(&format!("bad Ed25519 key: {e}")))?;
            (key, Algorithm::EdDSA)
        }
        "oct" => return Err(why("symmetric keys are never accepted from a JWKS")),
        other => return Err(why(&format!("unsupported key type {other}"))),
    };
    Ok(Jwk {
        kid,
        key,
        algorithm,
    })
}

fn decoded_len(b64: &str) -> Option<usize> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64.trim_end_matches('='))
        .ok()
        .map(|bytes| bytes.len())
}

/// The JOSE name of an algorithm.
pub fn name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const X32: &str = "c0A1n1lUDDQJw-fWKRj28Kpq8-p6bc8xp5a5cZC-w7U";
    const Y32: &str = "a6mAIEZcocxdeB0gh2jazqAdLW5fjJw3zu2np_Ypptw";

    fn algorithm(jwk: Value) -> Result<Algorithm, Rejected> {
        parse_key(&jwk).map(|k| k.algorithm)
    }

    #[test]
    fn the_key_type_and_curve_decide_the_algorithm_when_the_jwk_names_none() {
        assert_eq!(
            algorithm(json!({"kid": "r", "kty": "RSA", "n": "AQAB", "e": "AQAB"})),
            Ok(Algorithm::RS256)
        );
        assert_eq!(
            algorithm(json!({"kid": "e", "kty": "EC", "crv": "P-256", "x": X32, "y": Y32})),
            Ok(Algorithm::ES256)
        );
        assert_eq!(
            algorithm(json!({"kid": "o", "kty": "OKP", "crv": "Ed25519", "x": X32})),
            Ok(Algorithm::EdDSA)
        );
        assert_eq!(
            algorithm(json!({"kid": "p", "kty": "RSA", "alg": "PS256", "n": "AQAB", "e": "AQAB"})),
            Ok(Algorithm::PS256)
        );
    }

    #[test]
    fn symmetric_keys_are_refused_whatever_they_claim() {
        for alg in [None, Some("HS256"), Some("RS256")] {
            let mut jwk = json!({"kid": "s", "kty": "oct", "k": "c2VjcmV0"});
            if let Some(alg) = alg {
                jwk["alg"] = json!(alg);
            }
            assert!(algorithm(jwk).is_err());
        }
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_is_refused() {
        for jwk in [
            json!({"kid": "a", "kty": "RSA", "alg": "HS256", "n": "AQAB", "e": "AQAB"}),
            json!({"kid": "b", "kty": "RSA", "alg": "ES256", "n": "AQAB", "e": "AQAB"}),
            json!({"kid": "c", "kty": "EC", "crv": "P-256", "alg": "ES384", "x": X32, "y": Y32}),
            json!({"kid": "d", "kty": "OKP", "crv": "Ed25519", "alg": "none", "x": X32}),
            json!({"kid": "e", "kty": "OKP", "crv": "X25519", "x": X32}),
            json!({"kid": "f", "kty": "EC", "crv": "P-256", "x": "AQAB", "y": Y32}),
            json!({"kid": "g", "kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"}),
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
        ] {
            assert!(algorithm(jwk.clone()).is_err(), "{jwk}");
        }
    }

    #[test]
    fn one_unusable_key_does_not_hide_the_others_and_a_repeated_kid_keeps_the_first() {
        let set = json!({"keys": [
            {"kid": "x", "kty": "OKP", "crv": "X25519", "x": X32},
            {"kid": "e", "kty": "EC", "crv": "P-256", "x": X32, "y": Y32},
            {"kid": "e", "kty": "OKP", "crv": "Ed25519", "x": X32},
        ]});
        let (usable, refused) = parse_set(&set).expect("a JWKS");
        assert_eq!(usable.len(), 1);
        assert_eq!(usable[0].algorithm, Algorithm::ES256);
        assert_eq!(refused.len(), 2);
        assert!(parse_set(&json!({"nokeys": []})).is_err());
    }
}
