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

mod sql;
pub use sql::CompileError;
use sql::Sql;

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
                        b'\0' => {
                            // PostgreSQL cannot bind it in text: refused on both backends alike.
                            return error(i, "strings may not contain the NUL character (U+0000)");
                        }
                        _ => {
                            // Copy one whole UTF-8 character (`i` is on a character boundary:
                            // it only ever steps over whole characters).
                            let Some(ch) = input.get(i..).and_then(|rest| rest.chars().next())
                            else {
                                return error(i, "unterminated string");
                            };
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
        Ok(match terms.len() {
            1 => terms.swap_remove(0),
            _ => Filter::Or(terms),
        })
    }

    fn and(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut terms = vec![self.unary(depth)?];
        while self.keyword("and") {
            self.at += 1;
            terms.push(self.unary(depth)?);
        }
        Ok(match terms.len() {
            1 => terms.swap_remove(0),
            _ => Filter::And(terms),
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
        let mut sql = Sql::new(dialect, first_param);
        let direction = if self.descending { "DESC" } else { "ASC" };
        let subject = match Column::of(&self.field) {
            Some(column) => column.name().to_owned(),
            None => sql.value_of(&self.field),
        };
        sql.into_predicate(format!("{subject} {direction}, id {direction}"))
    }
}

#[cfg(test)]
mod tests;
