//! The subset of the service's OData connection filter that rthub evaluates: comparisons of
//! `connectionId`, `userId` and `protocol` with string literals or `null` (`eq`, `ne`, `in
//! ('a', 'b')`), group membership (`'app:room' in groups`), `and`, `or`, `not` and
//! parentheses. That covers what the SDK's documentation shows (`userId eq 'a' or
//! 'app:vip' in groups`); anything else (functions, numbers, lambdas) is refused with a 400
//! that names this subset, rather than matched differently from the service.
//!
//! A filter selects among the connections of this node (the service keeps all its
//! connections in one place; a cluster of rthub nodes would need each to evaluate it).

use std::fmt;

/// Filters nest at most this deep (parentheses and `not`), so no input can exhaust the stack.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Filter(Expr);

#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `a eq b` (`equal`) or `a ne b`.
    Compare {
        left: Operand,
        right: Operand,
        equal: bool,
    },
    /// `'g' in groups`.
    InGroups(Operand),
    /// `userId in ('a', 'b')`.
    InList(Operand, Vec<Option<String>>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Field(Field),
    /// A string literal, or `null`.
    Literal(Option<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    ConnectionId,
    UserId,
    Protocol,
}

/// What a filter sees of one connection.
pub(crate) struct Candidate<'a> {
    pub connection_id: &'a str,
    pub user_id: Option<&'a str>,
    pub protocol: &'a str,
    pub groups: &'a [std::sync::Arc<str>],
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "filter is not supported beyond connectionId, userId and protocol with eq, ne or in (…), \
     '<group>' in groups, and, or, not and parentheses: {0}"
)]
pub(crate) struct FilterError(String);

impl Filter {
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let tokens = tokenize(text)?;
        let mut parser = Parser { tokens, at: 0 };
        let expr = parser.or(0)?;
        match parser.tokens.get(parser.at) {
            None => Ok(Filter(expr)),
            Some(token) => Err(FilterError(format!("unexpected {token}"))),
        }
    }

    pub fn matches(&self, candidate: &Candidate<'_>) -> bool {
        eval(&self.0, candidate)
    }
}

fn eval(expr: &Expr, c: &Candidate<'_>) -> bool {
    let value = |operand: &Operand| -> Option<String> {
        match operand {
            Operand::Literal(literal) => literal.clone(),
            Operand::Field(Field::ConnectionId) => Some(c.connection_id.to_owned()),
            Operand::Field(Field::UserId) => c.user_id.map(str::to_owned),
            Operand::Field(Field::Protocol) => Some(c.protocol.to_owned()),
        }
    };
    match expr {
        Expr::Or(a, b) => eval(a, c) || eval(b, c),
        Expr::And(a, b) => eval(a, c) && eval(b, c),
        Expr::Not(a) => !eval(a, c),
        Expr::Compare { left, right, equal } => (value(left) == value(right)) == *equal,
        Expr::InGroups(operand) => {
            value(operand).is_some_and(|g| c.groups.iter().any(|member| **member == *g))
        }
        Expr::InList(operand, list) => list.contains(&value(operand)),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Word(word) => write!(f, "'{word}'"),
            Token::Str(_) => f.write_str("a string"),
            Token::Open => f.write_str("'('"),
            Token::Close => f.write_str("')'"),
            Token::Comma => f.write_str("','"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '\'' => {
                chars.next();
                let mut literal = String::new();
                loop {
                    match chars.next() {
                        // `''` is a quote inside a literal (the SDK's `odata` helper writes it).
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            literal.push('\'');
                        }
                        Some('\'') => break,
                        Some(other) => literal.push(other),
                        None => return Err(FilterError("a string is not closed".into())),
                    }
                }
                tokens.push(Token::Str(literal));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(Token::Word(word));
            }
            other => return Err(FilterError(format!("unexpected '{other}'"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w)) if w == word)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn expect(&mut self, wanted: Token) -> Result<(), FilterError> {
        match self.next() {
            Some(token) if token == wanted => Ok(()),
            Some(token) => Err(FilterError(format!("expected {wanted}, found {token}"))),
            None => Err(FilterError(format!("expected {wanted} at the end"))),
        }
    }

    fn or(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut left = self.and(depth)?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and(depth)?));
        }
        Ok(left)
    }

    fn and(&mut self, depth: usize) -> Result<Expr, FilterError> {
        let mut left = self.unary(depth)?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary(depth)?));
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Expr, FilterError> {
        if depth > MAX_DEPTH {
            return Err(FilterError(format!("nested deeper than {MAX_DEPTH}")));
        }
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary(depth + 1)?)));
        }
        if self.tokens.get(self.at) == Some(&Token::Open) {
            self.at += 1;
            let inner = self.or(depth + 1)?;
            self.expect(Token::Close)?;
            return Ok(inner);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, FilterError> {
        let left = self.operand()?;
        match self.next() {
            Some(Token::Word(op)) if op == "eq" || op == "ne" => Ok(Expr::Compare {
                left,
                right: self.operand()?,
                equal: op == "eq",
            }),
            Some(Token::Word(op)) if op == "in" => match self.next() {
                Some(Token::Word(word)) if word.eq_ignore_ascii_case("groups") => {
                    Ok(Expr::InGroups(left))
                }
                Some(Token::Open) => {
                    let mut list = Vec::new();
                    loop {
                        match self.operand()? {
                            Operand::Literal(literal) => list.push(literal),
                            Operand::Field(_) => {
                                return Err(FilterError("an in (…) list takes literals".into()))
                            }
                        }
                        match self.next() {
                            Some(Token::Comma) => {}
                            Some(Token::Close) => break,
                            _ => return Err(FilterError("an in (…) list is not closed".into())),
                        }
                    }
                    Ok(Expr::InList(left, list))
                }
                _ => Err(FilterError("in takes groups or a list".into())),
            },
            Some(token) => Err(FilterError(format!("unsupported operator {token}"))),
            None => Err(FilterError("a comparison is not complete".into())),
        }
    }

    fn operand(&mut self) -> Result<Operand, FilterError> {
        match self.next() {
            Some(Token::Str(literal)) => Ok(Operand::Literal(Some(literal))),
            Some(Token::Word(word)) => match word.to_ascii_lowercase().as_str() {
                "null" => Ok(Operand::Literal(None)),
                "connectionid" => Ok(Operand::Field(Field::ConnectionId)),
                "userid" => Ok(Operand::Field(Field::UserId)),
                "protocol" => Ok(Operand::Field(Field::Protocol)),
                _ => Err(FilterError(format!("unsupported name '{word}'"))),
            },
            Some(token) => Err(FilterError(format!("unexpected {token}"))),
            None => Err(FilterError("the filter ends too early".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn matches(filter: &str, user: Option<&str>, groups: &[&str]) -> bool {
        let groups: Vec<Arc<str>> = groups.iter().map(|g| Arc::from(*g)).collect();
        let candidate = Candidate {
            connection_id: "c1",
            user_id: user,
            protocol: "signalr",
            groups: &groups,
        };
        Filter::parse(filter).unwrap().matches(&candidate)
    }

    #[test]
    fn the_documented_shapes_evaluate() {
        assert!(matches("userId eq 'a'", Some("a"), &[]));
        assert!(!matches("userId eq 'a'", Some("b"), &[]));
        assert!(matches("userId ne 'a'", None, &[]));
        assert!(matches("userId eq null", None, &[]));
        assert!(matches(
            "ConnectionId eq 'c1' and protocol eq 'signalr'",
            None,
            &[]
        ));
        assert!(matches("'app:vip' in groups", None, &["app:x", "app:vip"]));
        assert!(!matches("not ('app:vip' in groups)", None, &["app:vip"]));
        assert!(matches("userId in ('a', 'b')", Some("b"), &[]));
        assert!(matches(
            "userId eq 'o''brien' or ('app:a' in groups and not userId eq null)",
            Some("o'brien"),
            &[]
        ));
        // `and` binds tighter than `or`.
        assert!(matches(
            "userId eq 'x' and userId eq 'y' or userId eq 'a'",
            Some("a"),
            &[]
        ));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "userId",
            "userId eq",
            "length(userId) gt 3",
            "userId gt 'a'",
            "groups/any(g: g eq 'a')",
            "userId eq 'unclosed",
            "name eq 'a'",
            "userId eq 1",
            "(userId eq 'a'",
            "userId eq 'a')",
            "userId in (userId)",
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}userId eq 'a'{}", "(".repeat(100), ")".repeat(100));
        assert!(Filter::parse(&deep).is_err());
        assert!(Filter::parse(&format!("{}userId eq 'a'", "not ".repeat(100))).is_err());
    }
}
