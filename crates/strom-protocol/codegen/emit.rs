//! Turns a parsed schema into Rust: one module per message with a struct per (nested) struct,
//! field builders, `Encodable` (one generic writer that both sizes and writes) and `Decodable`
//! (every count and length checked against the bytes left, by the runtime in `src/codec`), and,
//! behind the `testing` feature, random valid values for differential tests and fuzzing.

use super::schema::{Field, Kind, Message, Ty, Versions};
use std::collections::BTreeMap;
use std::fmt::Write;

/// A struct to emit: its name, the versions it exists in, its fields.
struct StructDef<'a> {
    name: String,
    versions: Versions,
    fields: &'a [Field],
    top: bool,
}

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

fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &["type", "match", "ref", "move", "self", "async", "await", "loop", "fn", "mod", "use"];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// `version >= lo && version <= hi` for the versions of `v` within `within` (None: always).
fn cond(v: Versions, within: Versions) -> Option<String> {
    let v = v.intersect(within);
    if v.is_empty() {
        return Some("false".into());
    }
    let lo = (v.lo > within.lo).then(|| format!("version >= {}", v.lo));
    let hi = (v.hi < within.hi).then(|| format!("version <= {}", v.hi));
    match (lo, hi) {
        (None, None) => None,
        (Some(a), None) | (None, Some(a)) => Some(a),
        (Some(a), Some(b)) => Some(format!("{a} && {b}")),
    }
}

fn cond_expr(v: Versions, within: Versions) -> String {
    cond(v, within).unwrap_or_else(|| "true".into())
}

fn base_rust(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "bool".into(),
        Ty::Int8 => "i8".into(),
        Ty::Int16 => "i16".into(),
        Ty::Uint16 => "u16".into(),
        Ty::Int32 => "i32".into(),
        Ty::Uint32 => "u32".into(),
        Ty::Int64 => "i64".into(),
        Ty::Float64 => "f64".into(),
        Ty::String => "StrBytes".into(),
        Ty::Bytes | Ty::Records => "Bytes".into(),
        Ty::Uuid => "Uuid".into(),
        Ty::Entity(_, e) => e.name().into(),
        Ty::Struct(n) => n.clone(),
        Ty::Array(t) => format!("Vec<{}>", base_rust(t)),
    }
}

fn rust_ty(f: &Field) -> String {
    if f.nullable.is_empty() {
        base_rust(&f.ty)
    } else {
        format!("Option<{}>", base_rust(&f.ty))
    }
}

fn inner_default(ty: &Ty, default: Option<&str>) -> String {
    let d = default.filter(|d| *d != "null");
    match ty {
        Ty::Bool => d.unwrap_or("false").into(),
        Ty::Int8 | Ty::Int16 | Ty::Uint16 | Ty::Int32 | Ty::Uint32 | Ty::Int64 => d.unwrap_or("0").into(),
        Ty::Float64 => match d {
            Some(v) if v.contains('.') => v.into(),
            Some(v) => format!("{v}.0"),
            None => "0.0".into(),
        },
        Ty::String => match d {
            Some(v) if v != "\"\"" => format!("StrBytes::from_static_str({v:?})"),
            _ => "StrBytes::default()".into(),
        },
        Ty::Bytes | Ty::Records => "Bytes::new()".into(),
        Ty::Uuid => "Uuid::nil()".into(),
        Ty::Entity(b, e) => format!("{}({})", e.name(), inner_default(b, default)),
        Ty::Struct(n) => format!("{n}::default()"),
        Ty::Array(inner) => format!("Vec::<{}>::new()", base_rust(inner)),
    }
}

fn default_expr(f: &Field) -> String {
    if f.nullable.is_empty() {
        inner_default(&f.ty, f.default.as_deref())
    } else if f.default.as_deref() == Some("null") {
        "None".into()
    } else {
        format!("Some({})", inner_default(&f.ty, f.default.as_deref()))
    }
}

/// Code writing `val` (an expression of the field's non-null type, by reference) to `out`.
fn write_value(ty: &Ty, val: &str, compact: &str) -> String {
    match ty {
        Ty::Bool => format!("put_bool(out, *{val});"),
        Ty::Int8 => format!("put_i8(out, *{val});"),
        Ty::Int16 => format!("put_i16(out, *{val});"),
        Ty::Uint16 => format!("put_u16(out, *{val});"),
        Ty::Int32 => format!("put_i32(out, *{val});"),
        Ty::Uint32 => format!("put_u32(out, *{val});"),
        Ty::Int64 => format!("put_i64(out, *{val});"),
        Ty::Float64 => format!("put_f64(out, *{val});"),
        Ty::Uuid => format!("put_uuid(out, {val});"),
        Ty::String => format!("put_string(out, {val}, {compact})?;"),
        Ty::Bytes | Ty::Records => format!("put_bytes(out, {val}, {compact})?;"),
        Ty::Entity(b, _) => write_value(b, &format!("(&({val}).0)"), compact),
        Ty::Struct(_) => format!("({val}).encode_to(out, version)?;"),
        Ty::Array(inner) => format!(
            "put_array_len(out, ({val}).len(), {compact})?; for item in ({val}).iter() {{ {} }}",
            write_value(inner, "item", compact)
        ),
    }
}

fn write_null(ty: &Ty, compact: &str) -> String {
    match ty {
        Ty::String => format!("put_null_string(out, {compact});"),
        Ty::Bytes | Ty::Records => format!("put_null_bytes(out, {compact});"),
        Ty::Array(_) => format!("put_null_array(out, {compact});"),
        Ty::Struct(_) => "put_i8(out, -1);".into(),
        Ty::Entity(b, _) => write_null(b, compact),
        _ => unreachable!("checked by the parser"),
    }
}

/// Code writing field `f` (at `self.<name>`) whose presence in this version was already checked.
fn write_field(s: &StructDef, f: &Field, compact: &str) -> String {
    let name = ident(&f.name);
    let qualified = format!("{}.{}", s.name, f.name);
    if f.nullable.is_empty() {
        return write_value(&f.ty, &format!("&self.{name}"), compact);
    }
    let nullable = cond_expr(f.nullable, s.versions);
    let present = match f.ty {
        Ty::Struct(_) => format!("put_i8(out, 1); {}", write_value(&f.ty, "v", compact)),
        _ => write_value(&f.ty, "v", compact),
    };
    format!(
        "match &self.{name} {{ Some(v) => {{ {present} }} None if {nullable} => {{ {} }} None => return Err(EncodeError::NullNotAllowed {{ field: {qualified:?}, version }}), }}",
        write_null(&f.ty, compact)
    )
}

/// An expression reading a value of `ty` (not null-checked) from `buf`.
fn read_value(ty: &Ty, buf: &str, compact: &str, what: &str, nullable: Option<&str>) -> String {
    let required = |e: String| match nullable {
        None => format!("required({e}, {what:?})?"),
        Some(c) => format!("nullable({e}, {c}, {what:?})?"),
    };
    match ty {
        Ty::Bool => format!("get_bool({buf})?"),
        Ty::Int8 => format!("get_i8({buf})?"),
        Ty::Int16 => format!("get_i16({buf})?"),
        Ty::Uint16 => format!("get_u16({buf})?"),
        Ty::Int32 => format!("get_i32({buf})?"),
        Ty::Uint32 => format!("get_u32({buf})?"),
        Ty::Int64 => format!("get_i64({buf})?"),
        Ty::Float64 => format!("get_f64({buf})?"),
        Ty::Uuid => format!("get_uuid({buf})?"),
        Ty::String => required(format!("get_string({buf}, {compact})?")),
        Ty::Bytes | Ty::Records => required(format!("get_bytes({buf}, {compact})?")),
        Ty::Entity(b, e) => match nullable {
            None => format!("{}({})", e.name(), read_value(b, buf, compact, what, None)),
            Some(_) => format!("{}.map({})", read_value(b, buf, compact, what, nullable), e.name()),
        },
        Ty::Struct(n) => match nullable {
            None => format!("{n}::decode({buf}, version)?"),
            Some(c) => format!(
                "nullable(get_struct_marker({buf})?.then(|| {n}::decode({buf}, version)).transpose()?, {c}, {what:?})?"
            ),
        },
        Ty::Array(inner) => {
            let elem = read_value(inner, "b", compact, what, None);
            required(format!("get_array({buf}, {compact}, |b| Ok({elem}))?"))
        }
    }
}

fn read_field(s: &StructDef, f: &Field, buf: &str, compact: &str) -> String {
    let what = format!("{}.{}", s.name, f.name);
    if f.nullable.is_empty() {
        read_value(&f.ty, buf, compact, &what, None)
    } else {
        read_value(&f.ty, buf, compact, &what, Some(&cond_expr(f.nullable, s.versions)))
    }
}

/// The versions in which `f` is a regular (not tagged) field.
fn regular_versions(f: &Field) -> Versions {
    match f.tagged {
        None => f.versions,
        Some((_, t)) => Versions { lo: f.versions.lo, hi: f.versions.hi.min(t.lo.saturating_sub(1)) },
    }
}

fn emit_struct(out: &mut String, m: &Message, s: &StructDef) -> Result<(), String> {
    let flexible = m.flexible.intersect(s.versions);
    let has_flexible = !flexible.is_empty();
    let compact_expr = cond_expr(m.flexible, s.versions);
    let _ = writeln!(out, "/// `{}`, versions {} (flexible {}).", s.name, s.versions, m.flexible);
    let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]\n#[non_exhaustive]\npub struct {} {{", s.name);
    for f in s.fields {
        let _ = writeln!(
            out,
            "    /// Versions {}{}.",
            f.versions,
            if f.nullable.is_empty() { String::new() } else { format!(", null in {}", f.nullable) }
        );
        let _ = writeln!(out, "    pub {}: {},", ident(&f.name), rust_ty(f));
    }
    let _ = writeln!(out, "    /// Tagged fields this version of Strom does not know, kept so they can be passed on.");
    let _ = writeln!(out, "    pub unknown_tagged_fields: BTreeMap<i32, Bytes>,\n}}\n");

    // Default
    let _ = writeln!(out, "impl Default for {} {{\n    fn default() -> Self {{\n        {} {{", s.name, s.name);
    for f in s.fields {
        let _ = writeln!(out, "            {}: {},", ident(&f.name), default_expr(f));
    }
    let _ = writeln!(out, "            unknown_tagged_fields: BTreeMap::new(),\n        }}\n    }}\n}}\n");

    // Builders
    let _ = writeln!(out, "impl {} {{", s.name);
    for f in s.fields {
        let _ = writeln!(
            out,
            "    pub fn with_{}(mut self, value: {}) -> Self {{ self.{} = value; self }}",
            f.name,
            rust_ty(f),
            ident(&f.name)
        );
    }
    let _ = writeln!(out, "    pub fn with_unknown_tagged_fields(mut self, value: BTreeMap<i32, Bytes>) -> Self {{ self.unknown_tagged_fields = value; self }}");
    let _ = writeln!(out, "}}\n");

    // Encode
    let _ = writeln!(out, "impl Encodable for {} {{", s.name);
    let _ = writeln!(out, "    fn encode_to<S: Sink>(&self, out: &mut S, version: i16) -> Result<(), EncodeError> {{");
    if s.top {
        let _ = writeln!(
            out,
            "        if !({}..={}).contains(&version) {{ return Err(EncodeError::UnsupportedVersion {{ message: {:?}, version }}); }}",
            s.versions.lo, s.versions.hi, s.name
        );
    }
    let _ = writeln!(out, "        let compact = {compact_expr};\n        let _ = compact;");
    for f in s.fields {
        let regular = regular_versions(f);
        let compact = if f.never_compact { "false" } else { "compact" };
        let write = write_field(s, f, compact);
        if !f.ignorable {
            let in_version = cond_expr(f.versions, s.versions);
            if in_version != "true" {
                let _ = writeln!(
                    out,
                    "        if !({in_version}) && self.{} != {} {{ return Err(EncodeError::FieldNotInVersion {{ field: \"{}.{}\", version }}); }}",
                    ident(&f.name),
                    default_expr(f),
                    s.name,
                    f.name
                );
            }
        }
        if regular.intersect(s.versions).is_empty() {
            continue;
        }
        match cond(regular, s.versions) {
            None => {
                let _ = writeln!(out, "        {write}");
            }
            Some(c) => {
                let _ = writeln!(out, "        if {c} {{ {write} }}");
            }
        }
    }
    if has_flexible {
        let mut tagged: Vec<&Field> = s.fields.iter().filter(|f| f.tagged.is_some()).collect();
        tagged.sort_by_key(|f| f.tagged.map(|t| t.0));
        let _ = writeln!(out, "        if compact {{");
        let _ = writeln!(out, "            let mut count = self.unknown_tagged_fields.len();");
        for f in &tagged {
            let (tag, tv) = f.tagged.expect("tagged");
            let _ = writeln!(
                out,
                "            let tag_{tag} = ({}) && self.{} != {};\n            count += tag_{tag} as usize;",
                cond_expr(tv, s.versions),
                ident(&f.name),
                default_expr(f)
            );
        }
        let _ = writeln!(out, "            put_uvarint(out, count as u32);");
        let mut from = 0u32;
        for f in &tagged {
            let (tag, _) = f.tagged.expect("tagged");
            let write = write_field(s, f, "true");
            let _ = writeln!(
                out,
                "            put_unknown_tagged_fields(out, &self.unknown_tagged_fields, {from}, {tag})?;"
            );
            let _ = writeln!(
                out,
                "            if tag_{tag} {{ put_uvarint(out, {tag}); let size = {{ let out = &mut SizeCounter::default(); {write} out.size() }}; put_uvarint(out, size as u32); {write} }}"
            );
            // An unknown field with this tag (possible only in versions without the known one)
            // still goes out, after it, in ascending order.
            from = tag;
        }
        let _ = writeln!(
            out,
            "            put_unknown_tagged_fields(out, &self.unknown_tagged_fields, {from}, u32::MAX)?;"
        );
        let _ = writeln!(out, "        }}");
    }
    let _ = writeln!(out, "        Ok(())\n    }}\n}}\n");

    // Decode
    let _ = writeln!(out, "impl Decodable for {} {{", s.name);
    let _ = writeln!(out, "    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{");
    if s.top {
        let _ = writeln!(
            out,
            "        if !({}..={}).contains(&version) {{ return Err(DecodeError::UnsupportedVersion {{ message: {:?}, version }}); }}",
            s.versions.lo, s.versions.hi, s.name
        );
    }
    let _ = writeln!(out, "        let compact = {compact_expr};\n        let _ = compact;");
    for f in s.fields {
        let compact = if f.never_compact { "false" } else { "compact" };
        let read = read_field(s, f, "buf", compact);
        let regular = regular_versions(f);
        let mutable = if f.tagged.is_some() { "mut " } else { "" };
        if regular.intersect(s.versions).is_empty() {
            let _ = writeln!(out, "        let {mutable}{} = {};", ident(&f.name), default_expr(f));
            continue;
        }
        match cond(regular, s.versions) {
            None => {
                let _ = writeln!(out, "        let {mutable}{} = {read};", ident(&f.name));
            }
            Some(c) => {
                let _ = writeln!(
                    out,
                    "        let {mutable}{} = if {c} {{ {read} }} else {{ {} }};",
                    ident(&f.name),
                    default_expr(f)
                );
            }
        }
    }
    let _ = writeln!(out, "        let mut unknown_tagged_fields = BTreeMap::new();");
    if has_flexible {
        let _ = writeln!(out, "        if compact {{");
        let _ = writeln!(out, "            for _ in 0..get_tagged_field_count(buf)? {{");
        let _ = writeln!(out, "                let (tag, mut data) = get_tagged_field(buf)?;");
        let _ = writeln!(out, "                match tag {{");
        for f in s.fields {
            if let Some((tag, tv)) = f.tagged {
                let read = read_field(s, f, "&mut data", "true");
                let _ = writeln!(
                    out,
                    "                    {tag} if {} => {{ {} = {read}; expect_consumed(&data, \"{}.{}\")?; }}",
                    cond_expr(tv, s.versions),
                    ident(&f.name),
                    s.name,
                    f.name
                );
            }
        }
        let _ = writeln!(out, "                    _ => {{ unknown_tagged_fields.insert(tag as i32, data); }}");
        let _ = writeln!(out, "                }}\n            }}\n        }}");
    }
    let _ = write!(out, "        Ok({} {{ ", s.name);
    for f in s.fields {
        let _ = write!(out, "{}, ", ident(&f.name));
    }
    let _ = writeln!(out, "unknown_tagged_fields }})\n    }}\n}}\n");

    // Random values for tests
    let _ = writeln!(out, "#[cfg(feature = \"testing\")]\nimpl crate::testing::Random for {} {{", s.name);
    let _ = writeln!(
        out,
        "    fn random(rng: &mut crate::testing::Rng, version: i16) -> Self {{\n        let mut v = Self::default();"
    );
    for f in s.fields {
        let null = if f.nullable.is_empty() {
            String::new()
        } else {
            format!(
                " if ({}) && rng.chance(8) {{ v.{} = None; }} else",
                cond_expr(f.nullable, s.versions),
                ident(&f.name)
            )
        };
        let value = if f.nullable.is_empty() { random_value(&f.ty) } else { format!("Some({})", random_value(&f.ty)) };
        let _ = writeln!(
            out,
            "        if {} {{{null} {{ v.{} = {value}; }} }}",
            cond_expr(f.versions, s.versions),
            ident(&f.name)
        );
    }
    if has_flexible {
        let _ = writeln!(
            out,
            "        if ({compact_expr}) && rng.chance(4) {{ v.unknown_tagged_fields = rng.unknown_tagged_fields(); }}"
        );
    }
    let _ = writeln!(out, "        let _ = (rng, version);\n        v\n    }}\n}}\n");
    Ok(())
}

fn random_value(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "rng.bool()".into(),
        Ty::Int8 => "rng.u64() as i8".into(),
        Ty::Int16 => "rng.u64() as i16".into(),
        Ty::Uint16 => "rng.u64() as u16".into(),
        Ty::Int32 => "rng.u64() as i32".into(),
        Ty::Uint32 => "rng.u64() as u32".into(),
        Ty::Int64 => "rng.u64() as i64".into(),
        Ty::Float64 => "rng.float()".into(),
        Ty::Uuid => "rng.uuid()".into(),
        Ty::String => "rng.string()".into(),
        Ty::Bytes | Ty::Records => "rng.bytes()".into(),
        Ty::Entity(b, e) => format!("{}({})", e.name(), random_value(b)),
        Ty::Struct(n) => format!("<{n} as crate::testing::Random>::random(rng, version)"),
        Ty::Array(inner) => format!("(0..rng.count()).map(|_| {}).collect()", random_value(inner)),
    }
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
