//! Filters and sorts compiled to SQL: every value and every field name is a bound parameter.
//!
//! The parser refuses the comparisons that mean nothing (`filter::check`); compiling does not
//! trust that it ran: a comparison it cannot express is a [`CompileError`], never a panic, so a
//! `Filter` built by hand (or a parser change that forgets a case) fails one request alone.

use super::{Column, Comparison, Dialect, Filter, Literal, Op, Predicate, SqlParam};
use serde_json::Number;

/// A comparison that has no SQL form: the parser refuses these, so a client meets them only
/// through a filter that was not parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("{field} is compared with an RFC 3339 date-time")]
    NotADateTime { field: String },
    #[error("_version is compared with an integer")]
    NotAnInteger,
    #[error("id is compared with a string")]
    NotAString,
    #[error("null is compared with eq or ne only")]
    NullOrdering,
    #[error("gt, ge, lt and le compare numbers, strings and dates")]
    BooleanOrdering,
}

pub(super) struct Sql {
    dialect: Dialect,
    next: usize,
    params: Vec<SqlParam>,
}

impl Sql {
    pub(super) fn new(dialect: Dialect, first_param: usize) -> Self {
        Self {
            dialect,
            next: first_param,
            params: Vec::new(),
        }
    }

    pub(super) fn into_predicate(self, sql: String) -> Predicate {
        Predicate {
            sql,
            params: self.params,
        }
    }

    fn bind(&mut self, param: SqlParam) -> String {
        self.params.push(param);
        match self.dialect {
            Dialect::Sqlite => "?".to_owned(),
            Dialect::Postgres => {
                self.next += 1;
                format!("${}", self.next - 1)
            }
        }
    }

    /// The field's JSON value (Postgres `jsonb`; SQLite the extracted SQL value).
    pub(super) fn value_of(&mut self, field: &str) -> String {
        match self.dialect {
            Dialect::Postgres => {
                format!("(data -> {})", self.bind(SqlParam::Text(field.to_owned())))
            }
            Dialect::Sqlite => format!("json_extract(data, {})", self.bind(json_path(field))),
        }
    }

    /// The field's text (for string operators).
    fn text_of(&mut self, field: &str) -> String {
        match self.dialect {
            Dialect::Postgres => {
                format!("(data ->> {})", self.bind(SqlParam::Text(field.to_owned())))
            }
            Dialect::Sqlite => self.value_of(field),
        }
    }

    /// The field's JSON type name: Postgres `jsonb_typeof` (string, number, boolean, null, …);
    /// SQLite `json_type` (text, integer, real, true, false, null, …). NULL when missing.
    fn type_of(&mut self, field: &str) -> String {
        match self.dialect {
            Dialect::Postgres => format!(
                "jsonb_typeof(data -> {})",
                self.bind(SqlParam::Text(field.to_owned()))
            ),
            Dialect::Sqlite => format!("json_type(data, {})", self.bind(json_path(field))),
        }
    }

    fn filter(&mut self, filter: &Filter) -> Result<String, CompileError> {
        match filter {
            Filter::And(terms) | Filter::Or(terms) => {
                let joiner = if matches!(filter, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = terms
                    .iter()
                    .map(|t| self.filter(t))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(format!("({})", parts.join(joiner)))
            }
            Filter::Compare(c) => match Column::of(&c.field) {
                Some(column) => self.column(column, c),
                None => self.data(c),
            },
        }
    }

    /// `NOT` of a condition that may be NULL (a missing field), counting NULL as false first.
    fn negate(&self, condition: String) -> String {
        format!("NOT coalesce({condition}, false)")
    }

    fn data(&mut self, c: &Comparison) -> Result<String, CompileError> {
        let field = c.field.as_str();
        Ok(match (&c.value, c.op) {
            (Literal::Null, Op::Eq) => {
                // Each placeholder binds its own parameter (SQLite's `?` are positional).
                let missing = self.type_of(field);
                let null = self.type_of(field);
                format!("({missing} IS NULL OR {null} = 'null')")
            }
            (Literal::Null, Op::Ne) => {
                let kind = self.type_of(field);
                format!("coalesce({kind} <> 'null', false)")
            }
            (Literal::Null, _) => return Err(CompileError::NullOrdering),
            (Literal::String(text), op) if op.is_text() || c.case_insensitive => {
                self.text(field, op, c.case_insensitive, text)
            }
            (value, Op::Eq) => self.equal(field, value),
            (value, Op::Ne) => {
                let equal = self.equal(field, value);
                self.negate(equal)
            }
            (Literal::String(text), op) => self.order(field, op, Ordered::Text(text)),
            (Literal::Number(n), op) => self.order(field, op, Ordered::Number(n)),
            (Literal::Bool(_), _) => return Err(CompileError::BooleanOrdering),
        })
    }

    /// `value` is never null here: `data` compiles null comparisons first.
    fn equal(&mut self, field: &str, value: &Literal) -> String {
        match self.dialect {
            // Containment uses the collection's GIN (jsonb_path_ops) index.
            Dialect::Postgres => {
                let document = serde_json::json!({ field: value.json() });
                format!("data @> {}::jsonb", self.bind(SqlParam::Json(document)))
            }
            Dialect::Sqlite => match value {
                Literal::Bool(b) => {
                    let kind = self.type_of(field);
                    format!("{kind} = '{}'", if *b { "true" } else { "false" })
                }
                Literal::String(text) => {
                    let kind = self.type_of(field);
                    let extracted = self.value_of(field);
                    let param = self.bind(SqlParam::Text(text.clone()));
                    format!("({kind} = 'text' AND {extracted} = {param})")
                }
                Literal::Number(n) => {
                    let kind = self.type_of(field);
                    let extracted = self.value_of(field);
                    let param = self.bind(number_param(n));
                    format!("({kind} IN ('integer', 'real') AND {extracted} = {param})")
                }
                Literal::Null => {
                    let kind = self.type_of(field);
                    format!("{kind} = 'null'")
                }
            },
        }
    }

    fn order(&mut self, field: &str, op: Op, value: Ordered<'_>) -> String {
        match self.dialect {
            Dialect::Postgres => {
                let json = value.json();
                let kind = self.type_of(field);
                let param_kind = self.bind(SqlParam::Json(json.clone()));
                let extracted = self.value_of(field);
                let param = self.bind(SqlParam::Json(json));
                format!("({kind} = jsonb_typeof({param_kind}::jsonb) AND {extracted} {} {param}::jsonb)", op.sql())
            }
            Dialect::Sqlite => {
                let (types, param) = match value {
                    Ordered::Text(text) => ("('text')", SqlParam::Text(text.to_owned())),
                    Ordered::Number(n) => ("('integer', 'real')", number_param(n)),
                };
                let kind = self.type_of(field);
                let extracted = self.value_of(field);
                let param = self.bind(param);
                format!("({kind} IN {types} AND {extracted} {} {param})", op.sql())
            }
        }
    }

    fn text(&mut self, field: &str, op: Op, case_insensitive: bool, value: &str) -> String {
        let kind = self.type_of(field);
        let is_string = match self.dialect {
            Dialect::Postgres => format!("{kind} = 'string'"),
            Dialect::Sqlite => format!("{kind} = 'text'"),
        };
        let extracted = self.text_of(field);
        let matched = self.text_match(&extracted, op, case_insensitive, value);
        let condition = format!("({is_string} AND {matched})");
        if op == Op::Ncon || (op == Op::Ne && case_insensitive) {
            self.negate(condition)
        } else {
            condition
        }
    }

    /// `subject` against `value` for a string operator (Ncon and Ne~ negated by the caller).
    fn text_match(&mut self, subject: &str, op: Op, case_insensitive: bool, value: &str) -> String {
        if matches!(op, Op::Eq | Op::Ne) {
            // Only the case-insensitive forms get here.
            let param = self.bind(SqlParam::Text(value.to_owned()));
            return format!("lower({subject}) = lower({param})");
        }
        let (prefix, suffix) = match op {
            Op::Sw => ("", "%"),
            Op::Ew => ("%", ""),
            _ => ("%", "%"),
        };
        match (self.dialect, case_insensitive) {
            (Dialect::Postgres, _) => {
                let pattern = format!("{prefix}{}{suffix}", like_escape(value));
                let param = self.bind(SqlParam::Text(pattern));
                let like = if case_insensitive { "ILIKE" } else { "LIKE" };
                format!("{subject} {like} {param} ESCAPE '\\'")
            }
            (Dialect::Sqlite, true) => {
                // SQLite's LIKE ignores ASCII case already.
                let pattern = format!("{prefix}{}{suffix}", like_escape(value));
                let param = self.bind(SqlParam::Text(pattern));
                format!("{subject} LIKE {param} ESCAPE '\\'")
            }
            (Dialect::Sqlite, false) => {
                // LIKE would ignore case; GLOB is case-sensitive (its wildcards escaped).
                let glob = |s: &str| if s.is_empty() { "" } else { "*" };
                let pattern = format!("{}{}{}", glob(prefix), glob_escape(value), glob(suffix));
                let param = self.bind(SqlParam::Text(pattern));
                format!("{subject} GLOB {param}")
            }
        }
    }

    fn column(&mut self, column: Column, c: &Comparison) -> Result<String, CompileError> {
        let name = column.name();
        if c.value == Literal::Null {
            // Columns are never null.
            return match c.op {
                Op::Eq => Ok("FALSE".into()),
                Op::Ne => Ok("TRUE".into()),
                _ => Err(CompileError::NullOrdering),
            };
        }
        let subject = match (column, self.dialect) {
            (Column::Id, Dialect::Postgres) => "id::text".to_owned(),
            _ => name.to_owned(),
        };
        let text_op = c.op.is_text() || c.case_insensitive;
        Ok(match (&c.value, column) {
            (Literal::String(text), Column::Id) if text_op => {
                let matched = self.text_match(&subject, c.op, c.case_insensitive, text);
                if c.op == Op::Ncon || (c.op == Op::Ne && c.case_insensitive) {
                    self.negate(matched)
                } else {
                    matched
                }
            }
            (Literal::String(text), Column::Id) => {
                let param = self.bind(SqlParam::Text(text.to_ascii_lowercase()));
                format!("{subject} {} {param}", c.op.sql())
            }
            (_, Column::Id) => return Err(CompileError::NotAString),
            (Literal::String(text), Column::Created | Column::Changed) if !text_op => {
                let at = chrono::DateTime::parse_from_rfc3339(text)
                    .map_err(|_| CompileError::NotADateTime {
                        field: c.field.clone(),
                    })?
                    .with_timezone(&chrono::Utc);
                let param = self.bind(SqlParam::Text(
                    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ));
                match self.dialect {
                    Dialect::Postgres => format!("{subject} {} {param}::timestamptz", c.op.sql()),
                    Dialect::Sqlite => format!("{subject} {} {param}", c.op.sql()),
                }
            }
            (_, Column::Created | Column::Changed) => {
                return Err(CompileError::NotADateTime {
                    field: c.field.clone(),
                })
            }
            (Literal::Number(n), Column::Version) if !text_op => {
                let n = n.as_i64().ok_or(CompileError::NotAnInteger)?;
                let param = self.bind(SqlParam::Integer(n));
                format!("{subject} {} {param}", c.op.sql())
            }
            (_, Column::Version) => return Err(CompileError::NotAnInteger),
        })
    }
}

/// The literal of an ordering comparison: a string or a number.
#[derive(Clone, Copy)]
enum Ordered<'a> {
    Text(&'a str),
    Number(&'a Number),
}

impl Ordered<'_> {
    fn json(self) -> serde_json::Value {
        match self {
            Self::Text(text) => serde_json::Value::String(text.to_owned()),
            Self::Number(n) => serde_json::Value::Number(n.clone()),
        }
    }
}

fn number_param(n: &Number) -> SqlParam {
    match n.as_i64() {
        Some(i) => SqlParam::Integer(i),
        None => SqlParam::Float(n.as_f64().unwrap_or(f64::NAN)),
    }
}

/// `$."name"`: a JSON path to a top-level key (names cannot contain `"`).
fn json_path(field: &str) -> SqlParam {
    SqlParam::Text(format!("$.\"{field}\""))
}

fn like_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn glob_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' => out.push_str("[*]"),
            '?' => out.push_str("[?]"),
            '[' => out.push_str("[[]"),
            c => out.push(c),
        }
    }
    out
}

impl Filter {
    /// Placeholders: PostgreSQL `$n` from `first_param`; SQLite `?` in order.
    pub fn to_sql(&self, dialect: Dialect, first_param: usize) -> Result<Predicate, CompileError> {
        let mut sql = Sql::new(dialect, first_param);
        let text = sql.filter(self)?;
        Ok(sql.into_predicate(text))
    }
}
