//! The schema file (RestAPI.com's shape): collections, typed properties with constraints and
//! defaults, lookups, and access rules per method. Loaded and checked whole at start-up: a bad
//! schema stops the server with a message naming the problem.

use negotiate::Identity;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

/// The fields the server sets on every item.
pub const SYSTEM_FIELDS: [&str; 4] = ["id", "_created", "_changed", "_version"];
const MAX_NAME: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Listen,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Listen => "LISTEN",
        }
    }
}

impl FromStr for Method {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Ok(match text {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "LISTEN" => Self::Listen,
            other => {
                return Err(format!(
                    "unknown access method '{other}' (GET, POST, PUT, PATCH, DELETE or LISTEN)"
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PropertyType {
    String,
    Integer,
    Decimal,
    Boolean,
    Date,
    DateTime,
    Guid,
    Object,
    Lookup,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Property {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: PropertyType,
    #[serde(default)]
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub default: Option<Value>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccessRule {
    method: String,
    role_names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectionFile {
    name: String,
    #[serde(default)]
    properties: Vec<Property>,
    #[serde(default)]
    access: Vec<AccessRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    collections: Vec<CollectionFile>,
}

#[derive(Debug, Clone)]
pub struct Collection {
    pub name: String,
    pub properties: Vec<Property>,
    /// Roles allowed per method; a method absent here is for the server identity only.
    access: Vec<(Method, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Schema {
    collections: Vec<Collection>,
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("cannot read the schema file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid schema{path}: {message}")]
    Invalid { path: String, message: String },
}

fn invalid(message: String) -> SchemaError {
    SchemaError::Invalid {
        path: String::new(),
        message,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    Create,
    /// PUT: the body is the whole new document (defaults apply, as on create).
    Replace,
    /// PATCH: the body's top-level keys are merged into the current document.
    Patch,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// Letters, digits, `-`, `_`, starting with a letter; at most 64 characters.
pub fn valid_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Schema {
    pub fn from_json(text: &str) -> Result<Schema, SchemaError> {
        let file: SchemaFile = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let names: HashSet<&str> = file.collections.iter().map(|c| c.name.as_str()).collect();
        let mut seen = HashSet::new();
        let mut collections = Vec::with_capacity(file.collections.len());
        for collection in &file.collections {
            let at =
                |message: String| invalid(format!("collection '{}': {message}", collection.name));
            if !valid_name(&collection.name) {
                return Err(at(
                    "a name is 1-64 letters, digits, '-' or '_', starting with a letter".into(),
                ));
            }
            if !seen.insert(collection.name.as_str()) {
                return Err(at("defined twice".into()));
            }
            let mut properties = HashSet::new();
            for property in &collection.properties {
                let at = |message: String| at(format!("property '{}': {message}", property.name));
                if !valid_name(&property.name) || SYSTEM_FIELDS.contains(&property.name.as_str()) {
                    return Err(at("a name is 1-64 letters, digits, '-' or '_', starting with a letter, and not a system field".into()));
                }
                if !properties.insert(property.name.as_str()) {
                    return Err(at("defined twice".into()));
                }
                match (&property.kind, &property.target) {
                    (PropertyType::Lookup, None) => {
                        return Err(at("a lookup needs a target".into()))
                    }
                    (PropertyType::Lookup, Some(target)) if !names.contains(target.as_str()) => {
                        return Err(at(format!("lookup target '{target}' is not a collection")))
                    }
                    (kind, Some(_)) if *kind != PropertyType::Lookup => {
                        return Err(at("only lookups have a target".into()))
                    }
                    _ => {}
                }
                if let (Some(min), Some(max)) = (property.min, property.max) {
                    if min > max {
                        return Err(at(format!("min {min} is greater than max {max}")));
                    }
                }
                if let (Some(min), Some(max)) = (property.min_length, property.max_length) {
                    if min > max {
                        return Err(at(format!(
                            "minLength {min} is greater than maxLength {max}"
                        )));
                    }
                }
                let numeric =
                    matches!(property.kind, PropertyType::Integer | PropertyType::Decimal);
                if (property.min.is_some() || property.max.is_some()) && !numeric {
                    return Err(at(
                        "min and max apply to integer and decimal properties".into()
                    ));
                }
                if (property.min_length.is_some() || property.max_length.is_some())
                    && property.kind != PropertyType::String
                {
                    return Err(at(
                        "minLength and maxLength apply to string properties".into()
                    ));
                }
                if let Some(default) = &property.default {
                    if property.kind == PropertyType::Lookup {
                        return Err(at("a lookup has no default".into()));
                    }
                    if let Err(message) = check_value(property, default) {
                        return Err(at(format!("the default is invalid: {message}")));
                    }
                }
            }
            let mut access = Vec::new();
            for rule in &collection.access {
                let method: Method = rule.method.parse().map_err(at)?;
                if rule.role_names.is_empty() || rule.role_names.iter().any(|r| r.is_empty()) {
                    return Err(at(format!(
                        "access rule for {}: roleNames must name roles",
                        rule.method
                    )));
                }
                if access.iter().any(|(m, _)| *m == method) {
                    return Err(at(format!("two access rules for {}", rule.method)));
                }
                access.push((method, rule.role_names.clone()));
            }
            collections.push(Collection {
                name: collection.name.clone(),
                properties: collection.properties.clone(),
                access,
            });
        }
        Ok(Schema { collections })
    }

    pub fn load(path: &Path) -> Result<Schema, SchemaError> {
        let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|error| match error {
            SchemaError::Invalid { message, .. } => SchemaError::Invalid {
                path: format!(" {}", path.display()),
                message,
            },
            other => other,
        })
    }

    /// The development example: collections that allow everyone everything.
    pub fn example() -> Schema {
        Self::from_json(include_str!("example_schema.json")).expect("the example schema is valid")
    }

    pub fn collection(&self, name: &str) -> Option<&Collection> {
        self.collections.iter().find(|c| c.name == name)
    }

    pub fn collections(&self) -> impl Iterator<Item = &Collection> {
        self.collections.iter()
    }

    pub fn is_collection(&self, name: &str) -> bool {
        self.collection(name).is_some()
    }
}

/// Whether `value` fits `property` (a non-null value; nulls are handled by the caller).
fn check_value(property: &Property, value: &Value) -> Result<(), String> {
    let number_in_range = |n: f64| -> Result<(), String> {
        if let Some(min) = property.min {
            if n < min {
                return Err(format!("must be at least {min}"));
            }
        }
        if let Some(max) = property.max {
            if n > max {
                return Err(format!("must be at most {max}"));
            }
        }
        Ok(())
    };
    match property.kind {
        PropertyType::String => {
            let text = value.as_str().ok_or("must be a string")?;
            let length = text.chars().count();
            if let Some(min) = property.min_length {
                if length < min {
                    return Err(format!("must be at least {min} characters"));
                }
            }
            if let Some(max) = property.max_length {
                if length > max {
                    return Err(format!("must be at most {max} characters"));
                }
            }
            Ok(())
        }
        PropertyType::Integer => number_in_range(integer(value)?),
        PropertyType::Decimal => number_in_range(value.as_f64().ok_or("must be a number")?),
        PropertyType::Boolean => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "must be true or false".into()),
        PropertyType::Date => value
            .as_str()
            .and_then(|t| chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok())
            .map(|_| ())
            .ok_or_else(|| "must be a date (YYYY-MM-DD)".into()),
        PropertyType::DateTime => value
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|_| ())
            .ok_or_else(|| "must be an RFC 3339 date-time".into()),
        PropertyType::Guid | PropertyType::Lookup => value
            .as_str()
            .and_then(|t| uuid::Uuid::parse_str(t).ok())
            .map(|_| ())
            .ok_or_else(|| {
                if property.kind == PropertyType::Lookup {
                    "must be the id of an item".into()
                } else {
                    "must be a GUID".into()
                }
            }),
        PropertyType::Object => value
            .as_object()
            .map(|_| ())
            .ok_or_else(|| "must be an object".into()),
    }
}

/// An `integer` property's value: a whole number that fits 64 signed bits. 2 and 2.0 are the
/// same number; 2.5 is not an integer, and neither 2^64 nor 1e26 fits (JSON parsing would make
/// them floats, stored and returned as `1e+26`).
fn integer(value: &Value) -> Result<f64, String> {
    const OUT_OF_RANGE: &str =
        "must be an integer from -9223372036854775808 to 9223372036854775807";
    if let Some(n) = value.as_i64() {
        return Ok(n as f64);
    }
    if value.is_u64() {
        return Err(OUT_OF_RANGE.into());
    }
    match value.as_f64() {
        Some(f) if f.fract() != 0.0 || !f.is_finite() => Err("must be an integer".into()),
        // 2^63 is the first value past i64::MAX. -2^63 itself is refused as a float: the
        // literals just below i64::MIN (-9223372036854775809, …) parse to that same float, and
        // i64::MIN written as an integer never gets here (`as_i64` took it).
        Some(f) if f > -9_223_372_036_854_775_808.0 && f < 9_223_372_036_854_775_808.0 => Ok(f),
        Some(_) => Err(OUT_OF_RANGE.into()),
        None => Err("must be an integer".into()),
    }
}

/// Whether a string, or any key or string inside an object or array, holds U+0000. PostgreSQL
/// cannot store it in `jsonb` or `text`, so both backends refuse it the same way (a field error)
/// rather than SQLite storing what PostgreSQL answers with an error.
pub fn contains_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(contains_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || contains_nul(v)),
        _ => false,
    }
}

/// The field error for a NUL character.
pub const NUL_MESSAGE: &str = "must not contain the NUL character (U+0000)";

impl Collection {
    /// The document to store for a write, or every field error at once.
    ///
    /// System fields in the body are ignored (the server sets them). Undeclared properties are
    /// errors, unless the collection declares none (a schemaless collection).
    pub fn validate(
        &self,
        mode: WriteMode,
        body: Map<String, Value>,
        current: Option<&Map<String, Value>>,
    ) -> Result<Map<String, Value>, Vec<FieldError>> {
        let mut document = match (mode, current) {
            (WriteMode::Patch, Some(current)) => current.clone(),
            _ => Map::new(),
        };
        for (key, value) in body {
            if !SYSTEM_FIELDS.contains(&key.as_str()) {
                document.insert(key, value);
            }
        }
        if mode != WriteMode::Patch {
            for property in &self.properties {
                if let Some(default) = &property.default {
                    document
                        .entry(property.name.clone())
                        .or_insert_with(|| default.clone());
                }
            }
        }
        let mut errors = Vec::new();
        for (key, value) in &document {
            if key.contains('\0') || contains_nul(value) {
                errors.push(field_error(key, NUL_MESSAGE));
            }
        }
        if !errors.is_empty() {
            // Nothing else can be judged of a document that cannot be stored.
            return Err(errors);
        }
        if !self.properties.is_empty() {
            for key in document.keys() {
                if !self.properties.iter().any(|p| &p.name == key) {
                    errors.push(field_error(
                        key,
                        format!("not a property of collection '{}'", self.name),
                    ));
                }
            }
        }
        for property in &self.properties {
            match document.get(&property.name) {
                None | Some(Value::Null) if property.required => {
                    errors.push(field_error(&property.name, "is required"));
                }
                None | Some(Value::Null) => {}
                Some(value) => {
                    if let Err(message) = check_value(property, value) {
                        errors.push(field_error(&property.name, message));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(document)
        } else {
            Err(errors)
        }
    }

    /// Lookup properties and their target collections.
    pub fn lookups(&self) -> impl Iterator<Item = (&str, &str)> {
        self.properties
            .iter()
            .filter_map(|p| match (&p.kind, &p.target) {
                (PropertyType::Lookup, Some(target)) => Some((p.name.as_str(), target.as_str())),
                _ => None,
            })
    }

    /// The roles the access rule for `method` names; `None` when only the server identity may.
    pub fn roles(&self, method: Method) -> Option<&[String]> {
        self.access
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, roles)| roles.as_slice())
    }

    /// `_EVERYONE` allows anyone, `_AUTHENTICATED_USER` any identity with a user, custom roles
    /// their holders; the server identity is always allowed; no rule means server only.
    pub fn allows(&self, method: Method, identity: &Identity) -> bool {
        if identity.is_server {
            return true;
        }
        let Some((_, roles)) = self.access.iter().find(|(m, _)| *m == method) else {
            return false;
        };
        roles.iter().any(|role| match role.as_str() {
            "_EVERYONE" => true,
            "_AUTHENTICATED_USER" => identity.user_id.is_some(),
            custom => identity.roles.iter().any(|r| &**r == custom),
        })
    }
}

#[cfg(test)]
mod tests;
