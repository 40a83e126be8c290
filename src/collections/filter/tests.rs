use super::*;
use serde_json::json;

fn cmp(field: &str, op: Op, value: Literal) -> Filter {
    Filter::Compare(Comparison {
        field: field.into(),
        op,
        case_insensitive: false,
        value,
    })
}

fn num(n: i64) -> Literal {
    Literal::Number(n.into())
}

#[test]
fn and_binds_tighter_than_or_and_parentheses_override() {
    assert_eq!(
        parse("a eq 1 or b eq 2 and c eq 3").unwrap(),
        Filter::Or(vec![
            cmp("a", Op::Eq, num(1)),
            Filter::And(vec![cmp("b", Op::Eq, num(2)), cmp("c", Op::Eq, num(3))]),
        ])
    );
    assert_eq!(
        parse("(a eq 1 OR b eq 2) AND c eq 3").unwrap(),
        Filter::And(vec![
            Filter::Or(vec![cmp("a", Op::Eq, num(1)), cmp("b", Op::Eq, num(2))]),
            cmp("c", Op::Eq, num(3)),
        ])
    );
}

#[test]
fn every_operator_values_and_escapes() {
    for (op, parsed) in [
        ("eq", Op::Eq),
        ("ne", Op::Ne),
        ("gt", Op::Gt),
        ("ge", Op::Ge),
        ("lt", Op::Lt),
        ("le", Op::Le),
        ("con", Op::Con),
        ("ncon", Op::Ncon),
        ("sw", Op::Sw),
        ("ew", Op::Ew),
    ] {
        let Filter::Compare(c) = parse(&format!("name {op} \"x\"")).unwrap() else {
            panic!()
        };
        assert_eq!((c.op, c.case_insensitive), (parsed, false));
        if !op.starts_with('g') && !op.starts_with('l') {
            let Filter::Compare(c) = parse(&format!("name {op}~ \"x\"")).unwrap() else {
                panic!()
            };
            assert_eq!((c.op, c.case_insensitive), (parsed, true));
        }
    }
    let Filter::Compare(c) = parse(r#"  name   eq   "a \"quoted\" \\ é"  "#).unwrap() else {
        panic!()
    };
    assert_eq!(c.value, Literal::String("a \"quoted\" \\ é".into()));
    for (text, value) in [
        (
            "n eq -2.5",
            Literal::Number(serde_json::Number::from_f64(-2.5).unwrap()),
        ),
        ("n eq true", Literal::Bool(true)),
        ("n eq false", Literal::Bool(false)),
        ("n eq null", Literal::Null),
        ("my-field_2 ne 7", num(7)),
    ] {
        let Filter::Compare(c) = parse(text).unwrap() else {
            panic!()
        };
        assert_eq!(c.value, value, "{text}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let cases = [
        ("name eq \"open", "unterminated string", 8),
        ("name is 1", "unknown operator 'is'", 5),
        ("name eq", "expected a value", 7),
        ("name eq 1 garbage", "expected 'and', 'or'", 10),
        ("()", "empty parentheses", 1),
        ("customer.name eq 1", "not paths", 0),
        ("1name eq 1", "expected a field name", 0),
        ("name gt null", "null is compared with eq or ne", 0),
        ("name con 5", "compare strings", 0),
        ("flag gt true", "compare numbers", 0),
        ("_created gt \"yesterday\"", "RFC 3339", 0),
        ("_version eq \"1\"", "integer", 0),
        ("name eq \"x\\q\"", "unknown escape", 10),
        ("name eq 1 and", "expected a field name", 13),
        ("", "empty", 0),
        ("name eq 'x'", "unexpected", 8),
    ];
    for (input, message, position) in cases {
        let error = parse(input).unwrap_err();
        assert!(error.message.contains(message), "{input}: {error}");
        assert_eq!(error.position, position, "{input}: {error}");
    }
    let deep = format!("{}a eq 1{}", "(".repeat(40), ")".repeat(40));
    assert!(parse(&deep).unwrap_err().message.contains("deeper"));
    let many = vec!["a eq 1"; 70].join(" or ");
    assert!(parse(&many).unwrap_err().message.contains("more than 64"));
    assert!(parse(&"a".repeat(5000))
        .unwrap_err()
        .message
        .contains("4096"));
}

#[test]
fn postgres_sql_binds_everything() {
    let p = parse(r#"name eq "x' OR 1=1 --" and (price gt 10 or tag con~ "50%_off")"#)
        .unwrap()
        .to_sql(Dialect::Postgres, 3)
        .unwrap();
    assert_eq!(
        p.sql,
        "(data @> $3::jsonb AND ((jsonb_typeof(data -> $4) = jsonb_typeof($5::jsonb) AND (data -> $6) > $7::jsonb) OR (jsonb_typeof(data -> $8) = 'string' AND (data ->> $9) ILIKE $10 ESCAPE '\\')))"
    );
    assert_eq!(
        p.params,
        vec![
            SqlParam::Json(json!({"name": "x' OR 1=1 --"})),
            SqlParam::Text("price".into()),
            SqlParam::Json(json!(10)),
            SqlParam::Text("price".into()),
            SqlParam::Json(json!(10)),
            SqlParam::Text("tag".into()),
            SqlParam::Text("tag".into()),
            SqlParam::Text("%50\\%\\_off%".into()),
        ]
    );
    assert!(!p.sql.contains("name") && !p.sql.contains("price") && !p.sql.contains("1=1"));
}

#[test]
fn sqlite_sql_binds_everything_and_contains_is_case_sensitive() {
    let p = parse(r#"name con "a*b" or n ne 5 or missing eq null"#)
        .unwrap()
        .to_sql(Dialect::Sqlite, 1)
        .unwrap();
    assert_eq!(
        p.sql,
        "((json_type(data, ?) = 'text' AND json_extract(data, ?) GLOB ?) OR NOT coalesce((json_type(data, ?) IN ('integer', 'real') AND json_extract(data, ?) = ?), false) OR (json_type(data, ?) IS NULL OR json_type(data, ?) = 'null'))"
    );
    assert_eq!(p.params.len(), p.sql.matches('?').count());
    assert_eq!(p.params[2], SqlParam::Text("*a[*]b*".into()));
    assert_eq!(p.params[0], SqlParam::Text("$.\"name\"".into()));
}

#[test]
fn system_fields_use_columns() {
    let p = parse(r#"_version ge 2 and _created lt "2026-01-01T00:00:00+01:00" and id eq "ABC""#)
        .unwrap()
        .to_sql(Dialect::Postgres, 1)
        .unwrap();
    assert_eq!(
        p.sql,
        "(version >= $1 AND created < $2::timestamptz AND id::text = $3)"
    );
    assert_eq!(
        p.params,
        vec![
            SqlParam::Integer(2),
            SqlParam::Text("2025-12-31T23:00:00.000000Z".into()),
            SqlParam::Text("abc".into()),
        ]
    );
    assert_eq!(
        parse("id eq null")
            .unwrap()
            .to_sql(Dialect::Sqlite, 1)
            .unwrap()
            .sql,
        "FALSE"
    );
}

#[test]
fn sort_orders_by_a_bound_field_then_id() {
    assert_eq!(
        parse_sort("price-").unwrap(),
        Sort {
            field: "price".into(),
            descending: true
        }
    );
    let p = parse_sort("price").unwrap().to_sql(Dialect::Postgres, 4);
    assert_eq!(p.sql, "(data -> $4) ASC, id ASC");
    assert_eq!(p.params, vec![SqlParam::Text("price".into())]);
    assert_eq!(
        parse_sort("_created-")
            .unwrap()
            .to_sql(Dialect::Sqlite, 1)
            .sql,
        "created DESC, id DESC"
    );
    for bad in ["", "-", "a b", "x;drop", "1a", "a.b"] {
        assert!(parse_sort(bad).is_err(), "{bad}");
    }
}

/// What the parser refuses is a typed error when compiled from a hand-built filter, never a
/// panic: the SQL step does not rely on the parser having run.
#[test]
fn comparisons_without_sql_are_errors_not_panics() {
    let cases = [
        (
            cmp("_created", Op::Lt, Literal::String("yesterday".into())),
            CompileError::NotADateTime {
                field: "_created".into(),
            },
        ),
        (
            cmp("_changed", Op::Eq, num(3)),
            CompileError::NotADateTime {
                field: "_changed".into(),
            },
        ),
        (
            cmp(
                "_version",
                Op::Eq,
                Literal::Number(serde_json::Number::from_f64(1.5).unwrap()),
            ),
            CompileError::NotAnInteger,
        ),
        (
            cmp("_version", Op::Eq, Literal::Bool(true)),
            CompileError::NotAnInteger,
        ),
        (cmp("id", Op::Eq, num(1)), CompileError::NotAString),
        (cmp("id", Op::Gt, Literal::Null), CompileError::NullOrdering),
        (
            cmp("price", Op::Gt, Literal::Null),
            CompileError::NullOrdering,
        ),
        (
            cmp("flag", Op::Lt, Literal::Bool(true)),
            CompileError::BooleanOrdering,
        ),
    ];
    for (filter, expected) in cases {
        for dialect in [Dialect::Postgres, Dialect::Sqlite] {
            assert_eq!(
                filter.to_sql(dialect, 1),
                Err(expected.clone()),
                "{filter:?}"
            );
        }
    }
}

#[test]
fn nul_in_a_string_literal_is_refused() {
    let error = parse("name eq \"a\u{0}b\"").unwrap_err();
    assert!(error.message.contains("NUL"), "{error}");
    assert_eq!(error.position, 10);
}
