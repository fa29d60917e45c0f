//! Emits one struct of a message: its definition, `Default`, builders, `Encodable`,
//! `Decodable` and (feature `testing`) `Random`.

use super::rust::*;
use super::schema::{Field, Message};
use std::fmt::Write;

pub fn emit_struct(out: &mut String, m: &Message, s: &StructDef) -> Result<(), String> {
    emit_definition(out, m, s);
    emit_default_and_builders(out, s);
    emit_encode(out, m, s);
    emit_decode(out, m, s);
    emit_random(out, m, s);
    Ok(())
}

/// `if !(lo..=hi).contains(&version) { return Err(..) }` for a top-level message, and `compact`.
fn prologue(out: &mut String, m: &Message, s: &StructDef, error: &str) {
    if s.top {
        let _ = writeln!(
            out,
            "        if !({}..={}).contains(&version) {{ return Err({error}::UnsupportedVersion {{ message: {:?}, version }}); }}",
            s.versions.lo, s.versions.hi, s.name
        );
    }
    let _ = writeln!(out, "        let compact = {};\n        let _ = compact;", cond_expr(m.flexible, s.versions));
}

/// The struct and its fields.
fn emit_definition(out: &mut String, m: &Message, s: &StructDef) {
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
}

/// `Default` (the schema's defaults) and a `with_<field>` builder per field.
fn emit_default_and_builders(out: &mut String, s: &StructDef) {
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
}

/// `Encodable`: regular fields in order, then the tagged fields in tag order.
fn emit_encode(out: &mut String, m: &Message, s: &StructDef) {
    let has_flexible = !m.flexible.intersect(s.versions).is_empty();
    let _ = writeln!(out, "impl Encodable for {} {{", s.name);
    let _ = writeln!(out, "    fn encode_to<S: Sink>(&self, out: &mut S, version: i16) -> Result<(), EncodeError> {{");
    prologue(out, m, s, "EncodeError");
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
}

/// `Decodable`: every read bounded by the runtime; tagged fields by tag, unknown ones kept.
fn emit_decode(out: &mut String, m: &Message, s: &StructDef) {
    let has_flexible = !m.flexible.intersect(s.versions).is_empty();
    let _ = writeln!(out, "impl Decodable for {} {{", s.name);
    let _ = writeln!(out, "    fn decode(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> {{");
    prologue(out, m, s, "DecodeError");
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
}

/// `Random`: a random value for each field the version has (feature `testing`).
fn emit_random(out: &mut String, m: &Message, s: &StructDef) {
    let has_flexible = !m.flexible.intersect(s.versions).is_empty();
    let compact_expr = cond_expr(m.flexible, s.versions);
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
}
