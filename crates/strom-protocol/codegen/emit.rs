//! Turns a parsed schema into Rust: one module per message with a struct per (nested) struct
//! (`structs.rs`), and the index of every API (`ApiKey`, header versions, test helpers).

use super::rust::StructDef;
use super::schema::{Field, Kind, Message, Ty, Versions};
use super::structs::emit_struct;
use std::collections::BTreeMap;
use std::fmt::Write;

pub fn snake(name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev_lower = i > 0 && (chars[i - 1].is_ascii_lowercase() || chars[i - 1].is_ascii_digit());
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_ascii_uppercase();
            if prev_lower || (prev_upper && next_lower) {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn collect<'a>(
    m: &'a Message,
    fields: &'a [Field],
    within: Versions,
    out: &mut Vec<StructDef<'a>>,
) -> Result<(), String> {
    for f in fields {
        let name = match &f.ty {
            Ty::Struct(n) => Some(n),
            Ty::Array(inner) => match &**inner {
                Ty::Struct(n) => Some(n),
                _ => None,
            },
            _ => None,
        };
        let Some(name) = name else { continue };
        let versions = f.versions.intersect(within);
        if f.fields.is_empty() {
            if !m.common.iter().any(|(n, ..)| n == name) {
                return Err(format!(
                    "{}: line {}: struct `{name}` has no fields and is no common struct",
                    m.name, f.line
                ));
            }
            continue;
        }
        if out.iter().any(|s| &s.name == name) {
            return Err(format!("{}: line {}: struct `{name}` is declared twice", m.name, f.line));
        }
        out.push(StructDef { name: name.clone(), versions, fields: &f.fields, top: false });
        collect(m, &f.fields, versions, out)?;
    }
    Ok(())
}

/// The module for one message.
pub fn emit_message(m: &Message) -> Result<String, String> {
    let mut structs = vec![StructDef { name: m.name.clone(), versions: m.versions, fields: &m.fields, top: true }];
    collect(m, &m.fields, m.versions, &mut structs)?;
    for (name, versions, fields) in &m.common {
        let versions = versions.intersect(m.versions);
        structs.push(StructDef { name: name.clone(), versions, fields, top: false });
        collect(m, fields, versions, &mut structs)?;
    }
    let mut out = String::new();
    let module = snake(&m.name);
    let _ =
        writeln!(out, "pub mod {module} {{\n    //! `{}`: versions {}, flexible {}.", m.name, m.versions, m.flexible);
    let _ = writeln!(out, "    #[allow(unused_imports)]\n    use crate::codec::*;\n    #[allow(unused_imports)]\n    use crate::messages::{{BrokerId, GroupId, ProducerId, TopicName, TransactionalId}};");
    let _ = writeln!(out, "    #[allow(unused_imports)]\n    use bytes::Bytes;\n    use std::collections::BTreeMap;\n    #[allow(unused_imports)]\n    use uuid::Uuid;\n");
    for s in &structs {
        emit_struct(&mut out, m, s)?;
    }
    let flex_lo = if m.flexible.is_empty() { i16::MAX } else { m.flexible.lo };
    let header_version = match m.kind {
        Kind::Request => format!("if version >= {flex_lo} {{ 2 }} else {{ 1 }}"),
        Kind::Response if m.name == "ApiVersionsResponse" => "0".into(),
        Kind::Response => format!("if version >= {flex_lo} {{ 1 }} else {{ 0 }}"),
        _ => "0".into(),
    };
    let _ = writeln!(out, "impl crate::codec::Message for {} {{", m.name);
    let _ = writeln!(out, "    const VERSIONS: (i16, i16) = ({}, {});", m.versions.lo, m.versions.hi);
    let _ = writeln!(out, "    fn header_version(version: i16) -> i16 {{ let _ = version; {header_version} }}\n}}");
    let _ = writeln!(out, "}}\npub use {module}::{};\n", m.name);
    Ok(out)
}

/// `ApiKey`, with the header versions of each API, and the list of every message for tests.
pub fn emit_index(messages: &[Message]) -> String {
    let mut apis: BTreeMap<i16, String> = BTreeMap::new();
    for m in messages.iter().filter(|m| m.kind == Kind::Request) {
        apis.insert(m.api_key.expect("requests have keys"), m.name.trim_end_matches("Request").to_string());
    }
    let mut out = String::new();
    let _ = writeln!(out, "/// The Kafka APIs Strom's codec knows, by their api key.");
    let _ = writeln!(out, "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum ApiKey {{");
    for (k, n) in &apis {
        let _ = writeln!(out, "    {n} = {k},");
    }
    let _ = writeln!(out, "}}\n\nimpl ApiKey {{");
    let _ = writeln!(
        out,
        "    /// Every API the codec knows, in api key order.\n    pub const ALL: &'static [ApiKey] = &[{}];",
        apis.values().map(|n| format!("ApiKey::{n}")).collect::<Vec<_>>().join(", ")
    );
    for (f, suffix) in
        [("request_header_version", "Request"), ("response_header_version", "Response"), ("valid_versions", "")]
    {
        if suffix.is_empty() {
            let _ = writeln!(out, "    /// The versions the codec can encode and decode.\n    pub fn valid_versions(&self) -> (i16, i16) {{\n        match self {{");
            for n in apis.values() {
                let _ = writeln!(out, "            ApiKey::{n} => <{n}Request as crate::codec::Message>::VERSIONS,");
            }
        } else {
            let _ = writeln!(out, "    pub fn {f}(&self, version: i16) -> i16 {{\n        match self {{");
            for n in apis.values() {
                let _ = writeln!(
                    out,
                    "            ApiKey::{n} => <{n}{suffix} as crate::codec::Message>::header_version(version),"
                );
            }
        }
        let _ = writeln!(out, "        }}\n    }}");
    }
    let _ = writeln!(out, "}}\n\nimpl TryFrom<i16> for ApiKey {{\n    type Error = ();\n    fn try_from(key: i16) -> Result<Self, ()> {{\n        match key {{");
    for (k, n) in &apis {
        let _ = writeln!(out, "            {k} => Ok(ApiKey::{n}),");
    }
    let _ = writeln!(out, "            _ => Err(()),\n        }}\n    }}\n}}\n");
    let _ = writeln!(out, "/// The body of a random valid request of `key` at `version` (feature `testing`).");
    let _ = writeln!(out, "#[cfg(feature = \"testing\")]\npub fn random_request_body(key: ApiKey, version: i16, rng: &mut crate::testing::Rng) -> Result<bytes::BytesMut, crate::codec::EncodeError> {{");
    let _ = writeln!(out, "    use crate::codec::Encodable;\n    use crate::testing::Random;\n    let mut buf = bytes::BytesMut::new();\n    match key {{");
    for n in apis.values() {
        let _ = writeln!(out, "        ApiKey::{n} => {n}Request::random(rng, version).encode(&mut buf, version)?,");
    }
    let _ = writeln!(out, "    }}\n    Ok(buf)\n}}\n");
    for (kind, suffix) in [("request", "Request"), ("response", "Response")] {
        let _ = writeln!(out, "/// Decodes a {kind} body of `key` at `version` and checks that it re-encodes stably (feature `testing`; for fuzzing).");
        let _ = writeln!(out, "#[cfg(feature = \"testing\")]\npub fn round_trip_{kind}(key: ApiKey, version: i16, buf: &mut bytes::Bytes) -> Result<(), crate::codec::DecodeError> {{\n    match key {{");
        for n in apis.values() {
            let _ = writeln!(out, "        ApiKey::{n} => crate::testing::round_trip::<{n}{suffix}>(buf, version),");
        }
        let _ = writeln!(out, "    }}\n}}\n");
    }
    let _ = writeln!(out, "/// Calls `$callback!` with every message type the codec has: `(Name, module), ...`.");
    let _ = writeln!(out, "#[macro_export]\n#[doc(hidden)]\nmacro_rules! for_each_message {{\n    ($callback:ident) => {{\n        $callback! {{");
    for m in messages {
        let _ = writeln!(out, "            ({}, {}),", m.name, snake(&m.name));
    }
    let _ = writeln!(out, "        }}\n    }};\n}}");
    out
}
