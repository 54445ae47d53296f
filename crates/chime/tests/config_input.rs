//! Arbitrary `chime.toml` keys and values through `Config::load`: it never panics, and a
//! refusal names the key it refuses. Its own test binary: `figment::Jail` changes the working
//! directory and the environment of the whole process.

// figment's Jail closures return its (large) error type by design.
#![allow(clippy::result_large_err)]

use chime::config::{Config, Overrides};
use proptest::prelude::*;
use serde_json::Value;

/// Every key `Config::default()` serialises, dotted (`delivery.concurrency`), plus keys of the
/// sections it leaves out and keys that do not exist.
fn keys() -> Vec<String> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<String>) {
        if let Value::Object(map) = value {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&key, v, out);
            }
        } else {
            out.push(prefix.to_owned());
        }
    }
    let mut out = Vec::new();
    let defaults = serde_json::to_value(Config::default()).expect("defaults serialise");
    walk("", &defaults, &mut out);
    out.extend(
        [
            "tls.cert_file",
            "tls.key_file",
            "auth.issuer",
            "auth.admin_claim",
            "channels.sms.from",
            "channels.email.smtp_url",
            "encryption.keys",
            "lisen",
            "delivery.concurency",
            "limits.nope",
        ]
        .map(str::to_owned),
    );
    out.sort();
    out.dedup();
    out
}

/// A TOML value, written out.
fn toml_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        (-3i64..70_000).prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| if f.is_finite() {
            format!("{f:e}")
        } else {
            "nan".to_owned()
        }),
        proptest::sample::select(vec![
            "inf", "-inf", "nan", "0.0", "-0.0", "1e308", "true", "false"
        ])
        .prop_map(str::to_owned),
        "\\PC{0,16}".prop_map(|s| serde_json::to_string(&s).expect("string")),
        proptest::sample::select(vec![
            "\"127.0.0.1:0\"",
            "\"[::1]:8080\"",
            "\"definition,tick\"",
            "\"\"",
            "\"full\"",
            "\"json\"",
            "\"US\"",
            "\"http://idp.example.com\"",
            "\"/nonexistent/cert.pem\"",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(str::to_owned),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec(("[a-z_]{1,8}", inner), 0..3).prop_map(|v| {
                let fields: Vec<String> =
                    v.into_iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", fields.join(", "))
            }),
        ]
    })
}

/// `key = value` as TOML: nested keys under their table.
fn toml_file(key: &str, value: &str) -> String {
    match key.rsplit_once('.') {
        Some((table, last)) => format!("[{table}]\n{last} = {value}\n"),
        None => format!("{key} = {value}\n"),
    }
}

proptest! {
    // Each case writes a file and loads every layer: modest.
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn an_arbitrary_key_and_value_in_chime_toml_is_loaded_or_refused_by_name(
        key in proptest::sample::select(keys()),
        value in toml_value(),
    ) {
        let file = toml_file(&key, &value);
        let mut outcome = Ok(());
        figment::Jail::expect_with(|jail| {
            jail.create_file("chime.toml", &file)?;
            if let Err(e) = Config::load(None, &Overrides::default()) {
                let message = format!("{e:#}");
                let last = key.rsplit('.').next().unwrap_or(&key);
                let section = key.split('.').next().unwrap_or(&key);
                if !(message.contains(last) || message.contains(section)) {
                    outcome = Err(format!("{file:?} refused without naming {key}: {message}"));
                }
            }
            Ok(())
        });
        if let Err(why) = outcome {
            return Err(TestCaseError::fail(why));
        }
    }
}
