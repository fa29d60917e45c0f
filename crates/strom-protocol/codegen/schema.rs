//! The schema language: one file per message, the wire format of each field as a fact.
//! See `schema/README.md` for the syntax. The parser is strict: an unknown token is an error
//! naming the file and line, so a typo cannot silently drop a field from the wire.

use std::fmt;

/// A set of versions: `0+`, `3-7`, `5`, or `none`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub lo: i16,
    pub hi: i16,
}

impl Versions {
    pub const NONE: Versions = Versions { lo: 1, hi: 0 };

    pub fn parse(s: &str) -> Result<Versions, String> {
        if s == "none" {
            return Ok(Versions::NONE);
        }
        let num = |t: &str| t.parse::<i16>().map_err(|_| format!("bad version range `{s}`"));
        if let Some(lo) = s.strip_suffix('+') {
            return Ok(Versions { lo: num(lo)?, hi: i16::MAX });
        }
        if let Some((lo, hi)) = s.split_once('-') {
            return Ok(Versions { lo: num(lo)?, hi: num(hi)? });
        }
        let v = num(s)?;
        Ok(Versions { lo: v, hi: v })
    }

    pub fn is_empty(&self) -> bool {
        self.lo > self.hi
    }

    pub fn intersect(&self, other: Versions) -> Versions {
        Versions { lo: self.lo.max(other.lo), hi: self.hi.min(other.hi) }
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            write!(f, "none")
        } else if self.hi == i16::MAX {
            write!(f, "{}+", self.lo)
        } else if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

/// Kafka's entity types that get a newtype of their own in Rust.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entity {
    TopicName,
    GroupId,
    TransactionalId,
    BrokerId,
    ProducerId,
}

impl Entity {
    pub fn name(&self) -> &'static str {
        match self {
            Entity::TopicName => "TopicName",
            Entity::GroupId => "GroupId",
            Entity::TransactionalId => "TransactionalId",
            Entity::BrokerId => "BrokerId",
            Entity::ProducerId => "ProducerId",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    String,
    Bytes,
    Records,
    Uuid,
    /// A string or integer with a newtype (`string<TopicName>`).
    Entity(Box<Ty>, Entity),
    /// A struct, declared by the field's children or as a common struct.
    Struct(String),
    Array(Box<Ty>),
}

impl Ty {
    fn parse(s: &str) -> Result<Ty, String> {
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            return Ok(Ty::Array(Box::new(Ty::parse(inner)?)));
        }
        if let Some((base, ent)) = s.strip_suffix('>').and_then(|r| r.split_once('<')) {
            let entity = match ent {
                "TopicName" => Entity::TopicName,
                "GroupId" => Entity::GroupId,
                "TransactionalId" => Entity::TransactionalId,
                "BrokerId" => Entity::BrokerId,
                "ProducerId" => Entity::ProducerId,
                other => return Err(format!("unknown entity type `{other}`")),
            };
            let base = Ty::parse(base)?;
            let fits = matches!(
                (&base, entity),
                (Ty::String, Entity::TopicName | Entity::GroupId | Entity::TransactionalId)
                    | (Ty::Int32, Entity::BrokerId)
                    | (Ty::Int64, Entity::ProducerId)
            );
            if !fits {
                return Err(format!("entity type `{ent}` does not fit `{base:?}`"));
            }
            return Ok(Ty::Entity(Box::new(base), entity));
        }
        Ok(match s {
            "bool" => Ty::Bool,
            "int8" => Ty::Int8,
            "int16" => Ty::Int16,
            "uint16" => Ty::Uint16,
            "int32" => Ty::Int32,
            "uint32" => Ty::Uint32,
            "int64" => Ty::Int64,
            "float64" => Ty::Float64,
            "string" => Ty::String,
            "bytes" => Ty::Bytes,
            "records" => Ty::Records,
            "uuid" => Ty::Uuid,
            name if name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) => Ty::Struct(name.to_string()),
            other => return Err(format!("unknown type `{other}`")),
        })
    }

    /// The type without its newtype.
    pub fn base(&self) -> &Ty {
        match self {
            Ty::Entity(b, _) => b,
            t => t,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Field {
    pub name: String,
    pub ty: Ty,
    pub versions: Versions,
    pub nullable: Versions,
    /// (tag, versions in which the field is tagged)
    pub tagged: Option<(u32, Versions)>,
    /// `flexible=none`: the field keeps its non-compact encoding in flexible versions.
    pub never_compact: bool,
    pub ignorable: bool,
    pub default: Option<String>,
    pub fields: Vec<Field>,
    pub line: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
    Header,
    Data,
}

#[derive(Clone, Debug)]
pub struct Message {
    pub kind: Kind,
    pub name: String,
    pub api_key: Option<i16>,
    pub versions: Versions,
    pub flexible: Versions,
    pub fields: Vec<Field>,
    /// Structs declared once at file level and used by several fields.
    pub common: Vec<(String, Versions, Vec<Field>)>,
}

pub fn parse(file: &str, text: &str) -> Result<Message, String> {
    let err = |line: usize, msg: String| format!("{file}:{line}: {msg}");
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .peekable();
    let (n, head) = lines.next().ok_or_else(|| err(1, "empty schema".into()))?;
    let mut words = head.split_whitespace();
    let kind = match words.next() {
        Some("request") => Kind::Request,
        Some("response") => Kind::Response,
        Some("header") => Kind::Header,
        Some("data") => Kind::Data,
        other => return Err(err(n, format!("expected request/response/header/data, found {other:?}"))),
    };
    let name = words.next().ok_or_else(|| err(n, "missing message name".into()))?.to_string();
    let (mut api_key, mut versions, mut flexible) = (None, None, None);
    for w in words {
        match w.split_once('=') {
            Some(("api", k)) => api_key = Some(k.parse::<i16>().map_err(|_| err(n, format!("bad api key `{k}`")))?),
            Some(("versions", v)) => versions = Some(Versions::parse(v).map_err(|e| err(n, e))?),
            Some(("flexible", v)) => flexible = Some(Versions::parse(v).map_err(|e| err(n, e))?),
            _ => return Err(err(n, format!("unknown attribute `{w}`"))),
        }
    }
    let versions = versions.ok_or_else(|| err(n, "missing versions=".into()))?;
    let flexible = flexible.ok_or_else(|| err(n, "missing flexible=".into()))?;
    if matches!(kind, Kind::Request | Kind::Response) != api_key.is_some() {
        return Err(err(n, "requests and responses, and only they, have api=".into()));
    }
    let mut all: Vec<(usize, usize, &str)> = Vec::new();
    for (n, l) in lines {
        let indent = l.len() - l.trim_start().len();
        if indent % 2 != 0 {
            return Err(err(n, "indentation must be a multiple of two spaces".into()));
        }
        all.push((n, indent / 2, l.trim()));
    }
    let mut pos = 0;
    let fields = parse_fields(file, &all, &mut pos, 1)?;
    let mut common = Vec::new();
    while pos < all.len() {
        let (n, depth, l) = all[pos];
        let mut w = l.split_whitespace();
        if depth != 0 || w.next() != Some("struct") {
            return Err(err(n, format!("expected a field or `struct Name versions=..`, found `{l}`")));
        }
        let sname = w.next().ok_or_else(|| err(n, "missing struct name".into()))?.to_string();
        let sv = match w.next().and_then(|v| v.strip_prefix("versions=")) {
            Some(v) => Versions::parse(v).map_err(|e| err(n, e))?,
            None => return Err(err(n, "missing versions=".into())),
        };
        pos += 1;
        common.push((sname, sv, parse_fields(file, &all, &mut pos, 1)?));
    }
    Ok(Message { kind, name, api_key, versions, flexible, fields, common })
}

fn parse_fields(file: &str, all: &[(usize, usize, &str)], pos: &mut usize, depth: usize) -> Result<Vec<Field>, String> {
    let err = |line: usize, msg: String| format!("{file}:{line}: {msg}");
    let mut out = Vec::new();
    while *pos < all.len() {
        let (n, d, l) = all[*pos];
        if d < depth {
            break;
        }
        if d > depth {
            return Err(err(n, "unexpected indentation".into()));
        }
        *pos += 1;
        let mut w = l.split_whitespace();
        let name = w
            .next()
            .and_then(|s| s.strip_suffix(':'))
            .ok_or_else(|| err(n, "expected `name: type versions ...`".into()))?;
        let ty = Ty::parse(w.next().ok_or_else(|| err(n, "missing type".into()))?).map_err(|e| err(n, e))?;
        let versions =
            Versions::parse(w.next().ok_or_else(|| err(n, "missing versions".into()))?).map_err(|e| err(n, e))?;
        let mut f = Field {
            name: name.to_string(),
            ty,
            versions,
            nullable: Versions::NONE,
            tagged: None,
            never_compact: false,
            ignorable: false,
            default: None,
            fields: Vec::new(),
            line: n,
        };
        let mut tag = None;
        let mut tagged = None;
        for a in w {
            match a.split_once('=') {
                Some(("nullable", v)) => f.nullable = Versions::parse(v).map_err(|e| err(n, e))?,
                Some(("tag", v)) => tag = Some(v.parse::<u32>().map_err(|_| err(n, format!("bad tag `{v}`")))?),
                Some(("tagged", v)) => tagged = Some(Versions::parse(v).map_err(|e| err(n, e))?),
                Some(("flexible", "none")) => f.never_compact = true,
                Some(("default", v)) => f.default = Some(v.to_string()),
                None if a == "ignorable" => f.ignorable = true,
                _ => return Err(err(n, format!("unknown attribute `{a}`"))),
            }
        }
        match (tag, tagged) {
            (Some(t), Some(v)) => f.tagged = Some((t, v)),
            (None, None) => {}
            _ => return Err(err(n, "tag= and tagged= go together".into())),
        }
        if !f.nullable.is_empty()
            && !matches!(f.ty.base(), Ty::String | Ty::Bytes | Ty::Records | Ty::Array(_) | Ty::Struct(_))
        {
            return Err(err(n, "only strings, bytes, records, arrays and structs can be nullable".into()));
        }
        f.fields = parse_fields(file, all, pos, depth + 1)?;
        let declares_struct = match &f.ty {
            Ty::Struct(_) => true,
            Ty::Array(inner) => matches!(**inner, Ty::Struct(_)),
            _ => false,
        };
        if !declares_struct && !f.fields.is_empty() {
            return Err(err(n, "only struct and struct-array fields have fields".into()));
        }
        out.push(f);
    }
    Ok(out)
}
