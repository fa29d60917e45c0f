//! The Rust side of each schema type: type names, defaults, and the expressions that write and
//! read a field's value (calling the runtime in `src/codec`), shared by the struct emitter.

use super::schema::{Field, Ty, Versions};

/// A struct to emit: its name, the versions it exists in, its fields.
pub struct StructDef<'a> {
    pub name: String,
    pub versions: Versions,
    pub fields: &'a [Field],
    pub top: bool,
}

pub fn ident(name: &str) -> String {
    const KEYWORDS: &[&str] = &["type", "match", "ref", "move", "self", "async", "await", "loop", "fn", "mod", "use"];
    if KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_string()
    }
}

/// `version >= lo && version <= hi` for the versions of `v` within `within` (None: always).
pub fn cond(v: Versions, within: Versions) -> Option<String> {
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

pub fn cond_expr(v: Versions, within: Versions) -> String {
    cond(v, within).unwrap_or_else(|| "true".into())
}

pub fn base_rust(ty: &Ty) -> String {
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

pub fn rust_ty(f: &Field) -> String {
    if f.nullable.is_empty() {
        base_rust(&f.ty)
    } else {
        format!("Option<{}>", base_rust(&f.ty))
    }
}

pub fn inner_default(ty: &Ty, default: Option<&str>) -> String {
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

pub fn default_expr(f: &Field) -> String {
    if f.nullable.is_empty() {
        inner_default(&f.ty, f.default.as_deref())
    } else if f.default.as_deref() == Some("null") {
        "None".into()
    } else {
        format!("Some({})", inner_default(&f.ty, f.default.as_deref()))
    }
}

/// Code writing `val` (an expression of the field's non-null type, by reference) to `out`.
pub fn write_value(ty: &Ty, val: &str, compact: &str) -> String {
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

pub fn write_null(ty: &Ty, compact: &str) -> String {
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
pub fn write_field(s: &StructDef, f: &Field, compact: &str) -> String {
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
pub fn read_value(ty: &Ty, buf: &str, compact: &str, what: &str, nullable: Option<&str>) -> String {
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

pub fn read_field(s: &StructDef, f: &Field, buf: &str, compact: &str) -> String {
    let what = format!("{}.{}", s.name, f.name);
    if f.nullable.is_empty() {
        read_value(&f.ty, buf, compact, &what, None)
    } else {
        read_value(&f.ty, buf, compact, &what, Some(&cond_expr(f.nullable, s.versions)))
    }
}

/// The versions in which `f` is a regular (not tagged) field.
pub fn regular_versions(f: &Field) -> Versions {
    match f.tagged {
        None => f.versions,
        Some((_, t)) => Versions { lo: f.versions.lo, hi: f.versions.hi.min(t.lo.saturating_sub(1)) },
    }
}

pub fn random_value(ty: &Ty) -> String {
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
