//! The list filter language (RestAPI.com's) and `sortBy`, compiled to SQL in which every value
//! and every field name is a bound parameter.
//!
//! `name eq "widget" and (price gt 10 or tag con "x")`: comparisons `field op value` with
//! `eq ne gt ge lt le con ncon sw ew`, a `~` suffix for case-insensitive string comparison,
//! `and` binding tighter than `or`, parentheses. Values: double-quoted strings (`\"`, `\\`,
//! `\/`, `\n`, `\t`, `\r` escapes), numbers, `true`, `false`, `null`.
//!
//! Semantics: a comparison matches only values of the literal's type (`price gt "10"` never
//! matches a number); `ne` and `ncon` also match items where the field is missing; `eq null`
//! matches a missing field or a JSON null, `ne null` a present non-null value; `~` lowercases
//! both sides (on SQLite only ASCII letters, as its `lower()` does).

use serde_json::{Number, Value};
use std::fmt;

pub const MAX_FILTER_BYTES: usize = 4096;
pub const MAX_DEPTH: usize = 32;
pub const MAX_COMPARISONS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

/// A bound parameter, in order of appearance.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlParam {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Json(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub sql: String,
    pub params: Vec<SqlParam>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.position + 1)
    }
}

impl std::error::Error for FilterError {}

fn error<T>(position: usize, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        position,
        message: message.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Con,
    Ncon,
    Sw,
    Ew,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            "con" => Self::Con,
            "ncon" => Self::Ncon,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            _ => return None,
        })
    }

    fn is_ordering(self) -> bool {
        matches!(self, Self::Gt | Self::Ge | Self::Lt | Self::Le)
    }

    fn is_text(self) -> bool {
        matches!(self, Self::Con | Self::Ncon | Self::Sw | Self::Ew)
    }

    fn sql(self) -> &'static str {
        match self {
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Eq => "=",
            _ => "<>",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
}

impl Literal {
    fn json(&self) -> Value {
        match self {
            Self::String(s) => Value::String(s.clone()),
            Self::Number(n) => Value::Number(n.clone()),
            Self::Bool(b) => Value::Bool(*b),
            Self::Null => Value::Null,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: String,
    pub op: Op,
    pub case_insensitive: bool,
    pub value: Literal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Compare(Comparison),
}

/// A system field stored as a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    Created,
    Changed,
    Version,
}

impl Column {
    fn of(field: &str) -> Option<Self> {
        Some(match field {
            "id" => Self::Id,
            "_created" => Self::Created,
            "_changed" => Self::Changed,
            "_version" => Self::Version,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Created => "created",
            Self::Changed => "changed",
            Self::Version => "version",
        }
    }
}

// ---------------------------------------------------------------- lexing and parsing

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Str(String),
    Num(Number),
}

fn lex(input: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => i += 1,
            b'(' => {
                tokens.push((i, Token::Open));
                i += 1;
            }
            b')' => {
                tokens.push((i, Token::Close));
                i += 1;
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut text = String::new();
                loop {
                    let Some(&c) = bytes.get(i) else {
                        return error(start, "unterminated string");
                    };
                    match c {
                        b'"' => {
                            i += 1;
                            break;
                        }
                        b'\\' => {
                            let escaped = match bytes.get(i + 1) {
                                Some(b'"') => '"',
                                Some(b'\\') => '\\',
                                Some(b'/') => '/',
                                Some(b'n') => '\n',
                                Some(b't') => '\t',
                                Some(b'r') => '\r',
                                _ => {
                                    return error(i, "unknown escape in string (use \\\" or \\\\)")
                                }
                            };
                            text.push(escaped);
                            i += 2;
                        }
                        _ => {
                            // Copy one whole UTF-8 character.
                            let ch = input[i..].chars().next().expect("inside the input");
                            text.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                tokens.push((start, Token::Str(text)));
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                let text = &input[start..i];
                let number: Number = serde_json::from_str(text)
                    .ok()
                    .filter(|_| !text.ends_with('.'))
                    .map_or_else(|| error(start, format!("'{text}' is not a number")), Ok)?;
                tokens.push((start, Token::Num(number)));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'-' | b'~' | b'.'))
                {
                    i += 1;
                }
                tokens.push((start, Token::Word(input[start..i].to_owned())));
            }
            _ => {
                let ch = input[i..].chars().next().unwrap_or('?');
                return error(i, format!("unexpected '{ch}'"));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    comparisons: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut terms = vec![self.and(depth)?];
        while self.keyword("or") {
            self.at += 1;
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one")
        } else {
            Filter::Or(terms)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut terms = vec![self.unary(depth)?];
        while self.keyword("and") {
            self.at += 1;
            terms.push(self.unary(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one")
        } else {
            Filter::And(terms)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, FilterError> {
        if self.peek() == Some(&Token::Open) {
            if depth >= MAX_DEPTH {
                return error(
                    self.position(),
                    format!("parentheses nest deeper than {MAX_DEPTH}"),
                );
            }
            self.at += 1;
            if self.peek() == Some(&Token::Close) {
                return error(self.position(), "empty parentheses");
            }
            let inner = self.or(depth + 1)?;
            if self.peek() != Some(&Token::Close) {
                return error(self.position(), "expected ')'");
            }
            self.at += 1;
            return Ok(inner);
        }
        self.comparison().map(Filter::Compare)
    }

    fn comparison(&mut self) -> Result<Comparison, FilterError> {
        let start = self.position();
        let field = match self.peek() {
            Some(Token::Word(word)) => word.clone(),
            _ => return error(start, "expected a field name"),
        };
        if field.contains('.') {
            return error(
                start,
                format!("'{field}': filters take plain field names, not paths"),
            );
        }
        if field.contains('~')
            || !(field.starts_with(|c: char| c.is_ascii_alphabetic())
                || Column::of(&field).is_some())
        {
            return error(start, format!("'{field}' is not a field name"));
        }
        self.at += 1;
        let op_at = self.position();
        let Some(Token::Word(word)) = self.peek().cloned() else {
            return error(
                op_at,
                "expected an operator (eq ne gt ge lt le con ncon sw ew)",
            );
        };
        let (name, case_insensitive) = match word.strip_suffix('~') {
            Some(name) => (name, true),
            None => (word.as_str(), false),
        };
        let op = Op::parse(name).map_or_else(
            || error(op_at, format!("unknown operator '{word}' (eq ne gt ge lt le con ncon sw ew, optionally with ~)")),
            Ok,
        )?;
        self.at += 1;
        let value_at = self.position();
        let value = match self.peek() {
            Some(Token::Str(s)) => Literal::String(s.clone()),
            Some(Token::Num(n)) => Literal::Number(n.clone()),
            Some(Token::Word(w)) if w == "true" => Literal::Bool(true),
            Some(Token::Word(w)) if w == "false" => Literal::Bool(false),
            Some(Token::Word(w)) if w == "null" => Literal::Null,
            _ => {
                return error(
                    value_at,
                    "expected a value: a \"string\", a number, true, false or null",
                )
            }
        };
        self.at += 1;
        self.comparisons += 1;
        if self.comparisons > MAX_COMPARISONS {
            return error(start, format!("more than {MAX_COMPARISONS} comparisons"));
        }
        let comparison = Comparison {
            field,
            op,
            case_insensitive,
            value,
        };
        check(&comparison).map_err(|message| FilterError {
            position: start,
            message,
        })?;
        Ok(comparison)
    }
}

/// The combinations that mean something.
fn check(c: &Comparison) -> Result<(), String> {
    let is_string = matches!(c.value, Literal::String(_));
    if c.value == Literal::Null && !matches!(c.op, Op::Eq | Op::Ne) {
        return Err("null is compared with eq or ne only".into());
    }
    if (c.op.is_text() || c.case_insensitive) && !is_string {
        return Err("con, ncon, sw, ew and ~ compare strings".into());
    }
    if c.op.is_ordering() && matches!(c.value, Literal::Bool(_)) {
        return Err("gt, ge, lt and le compare numbers, strings and dates".into());
    }
    match Column::of(&c.field) {
        Some(Column::Id) if !is_string && c.value != Literal::Null => {
            Err("id is compared with a string".into())
        }
        Some(Column::Created | Column::Changed) => match &c.value {
            Literal::Null => Ok(()),
            Literal::String(text) if !c.op.is_text() && !c.case_insensitive => {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|_| ())
                    .map_err(|_| format!("{} is compared with an RFC 3339 date-time", c.field))
            }
            _ => Err(format!(
                "{} is compared with an RFC 3339 date-time",
                c.field
            )),
        },
        Some(Column::Version) => match &c.value {
            Literal::Null => Ok(()),
            Literal::Number(n) if n.is_i64() => Ok(()),
            _ => Err("_version is compared with an integer".into()),
        },
        _ => Ok(()),
    }
}

pub fn parse(input: &str) -> Result<Filter, FilterError> {
    if input.len() > MAX_FILTER_BYTES {
        return error(
            MAX_FILTER_BYTES,
            format!("a filter is at most {MAX_FILTER_BYTES} bytes"),
        );
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return error(0, "the filter is empty");
    }
    let mut parser = Parser {
        tokens,
        at: 0,
        end: input.len(),
        comparisons: 0,
    };
    let filter = parser.or(0)?;
    if parser.at < parser.tokens.len() {
        return error(
            parser.position(),
            "expected 'and', 'or' or the end of the filter",
        );
    }
    Ok(filter)
}

// ---------------------------------------------------------------- SQL

struct Sql {
    dialect: Dialect,
    next: usize,
    params: Vec<SqlParam>,
}

impl Sql {
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
    fn value_of(&mut self, field: &str) -> String {
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

    fn filter(&mut self, filter: &Filter) -> String {
        match filter {
            Filter::And(terms) | Filter::Or(terms) => {
                let joiner = if matches!(filter, Filter::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts: Vec<String> = terms.iter().map(|t| self.filter(t)).collect();
                format!("({})", parts.join(joiner))
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

    fn data(&mut self, c: &Comparison) -> String {
        let field = c.field.as_str();
        match (&c.value, c.op) {
            (Literal::Null, Op::Eq) => {
                // Each placeholder binds its own parameter (SQLite's `?` are positional).
                let missing = self.type_of(field);
                let null = self.type_of(field);
                format!("({missing} IS NULL OR {null} = 'null')")
            }
            (Literal::Null, _) => {
                let kind = self.type_of(field);
                format!("coalesce({kind} <> 'null', false)")
            }
            (Literal::String(text), op) if op.is_text() || c.case_insensitive => {
                self.text(field, op, c.case_insensitive, text)
            }
            (value, Op::Eq) => self.equal(field, value),
            (value, Op::Ne) => {
                let equal = self.equal(field, value);
                self.negate(equal)
            }
            (value, op) => self.order(field, op, value),
        }
    }

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
                Literal::Null => unreachable!("null is handled before"),
            },
        }
    }

    fn order(&mut self, field: &str, op: Op, value: &Literal) -> String {
        match self.dialect {
            Dialect::Postgres => {
                let kind = self.type_of(field);
                let param_kind = self.bind(SqlParam::Json(value.json()));
                let extracted = self.value_of(field);
                let param = self.bind(SqlParam::Json(value.json()));
                format!("({kind} = jsonb_typeof({param_kind}::jsonb) AND {extracted} {} {param}::jsonb)", op.sql())
            }
            Dialect::Sqlite => {
                let (types, param) = match value {
                    Literal::String(text) => ("('text')", SqlParam::Text(text.clone())),
                    Literal::Number(n) => ("('integer', 'real')", number_param(n)),
                    _ => unreachable!("checked at parse time"),
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

    fn column(&mut self, column: Column, c: &Comparison) -> String {
        let name = column.name();
        if c.value == Literal::Null {
            // Columns are never null.
            return if c.op == Op::Eq {
                "FALSE".into()
            } else {
                "TRUE".into()
            };
        }
        let subject = match (column, self.dialect) {
            (Column::Id, Dialect::Postgres) => "id::text".to_owned(),
            _ => name.to_owned(),
        };
        match (&c.value, column) {
            (Literal::String(text), Column::Id) if c.op.is_text() || c.case_insensitive => {
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
            (Literal::String(text), Column::Created | Column::Changed) => {
                let at = chrono::DateTime::parse_from_rfc3339(text)
                    .expect("checked at parse time")
                    .with_timezone(&chrono::Utc);
                let param = self.bind(SqlParam::Text(
                    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ));
                match self.dialect {
                    Dialect::Postgres => format!("{subject} {} {param}::timestamptz", c.op.sql()),
                    Dialect::Sqlite => format!("{subject} {} {param}", c.op.sql()),
                }
            }
            (Literal::Number(n), _) => {
                let param = self.bind(SqlParam::Integer(
                    n.as_i64().expect("checked at parse time"),
                ));
                format!("{subject} {} {param}", c.op.sql())
            }
            _ => unreachable!("checked at parse time"),
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
    pub fn to_sql(&self, dialect: Dialect, first_param: usize) -> Predicate {
        let mut sql = Sql {
            dialect,
            next: first_param,
            params: Vec::new(),
        };
        let text = sql.filter(self);
        Predicate {
            sql: text,
            params: sql.params,
        }
    }
}

/// `sortBy=name` or `sortBy=name-` (descending).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub field: String,
    pub descending: bool,
}

pub fn parse_sort(input: &str) -> Result<Sort, FilterError> {
    let input = input.trim();
    let (field, descending) = match input.strip_suffix('-') {
        Some(field) => (field, true),
        None => (input, false),
    };
    let valid = (field.starts_with(|c: char| c.is_ascii_alphabetic())
        || Column::of(field).is_some())
        && field
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return error(
            0,
            format!("'{input}' is not a field name (add '-' for descending)"),
        );
    }
    Ok(Sort {
        field: field.to_owned(),
        descending,
    })
}

impl Sort {
    /// An ORDER BY list, ending with `id` for a stable order.
    pub fn to_sql(&self, dialect: Dialect, first_param: usize) -> Predicate {
        let mut sql = Sql {
            dialect,
            next: first_param,
            params: Vec::new(),
        };
        let direction = if self.descending { "DESC" } else { "ASC" };
        let subject = match Column::of(&self.field) {
            Some(column) => column.name().to_owned(),
            None => sql.value_of(&self.field),
        };
        Predicate {
            sql: format!("{subject} {direction}, id {direction}"),
            params: sql.params,
        }
    }
}

#[cfg(test)]
mod tests;
