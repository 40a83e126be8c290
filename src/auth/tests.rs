//! Token and key rules. The RSA pair in this folder exists only for these tests.

use super::*;
use jsonwebtoken::{encode, EncodingKey, Header};
use serde_json::json;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const PRIVATE: &[u8] = include_bytes!("test_rsa_private.pem");
const PUBLIC: &[u8] = include_bytes!("test_rsa_public.pem");

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn hs256(claims: serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn with_secret() -> Authenticator {
    Authenticator::new(AuthSettings {
        jwt: Some(JwtKey::Hs256(SECRET.to_vec())),
        issuer: Some("https://issuer.test".into()),
        audience: Some("rthub-app".into()),
        api_keys: vec![
            ApiKey {
                key: "server-key".into(),
                role: KeyRole::Server,
                realtime: vec![],
            },
            ApiKey {
                key: "client-key".into(),
                role: KeyRole::Client,
                realtime: vec![],
            },
        ],
        service_accounts: vec![ServiceAccount {
            client_id: "backend".into(),
            client_secret: "s3cret".into(),
        }],
    })
    .unwrap()
}

fn bearer(token: &str) -> Credentials {
    Credentials {
        bearer: Some(token.into()),
        api_key: None,
    }
}

fn good_claims() -> serde_json::Value {
    json!({"sub": "u1", "roles": ["editor"], "exp": now() + 60, "iss": "https://issuer.test", "aud": "rthub-app"})
}

#[test]
fn a_valid_token_gives_the_user_and_roles() {
    let identity = with_secret()
        .identify(&bearer(&hs256(good_claims())))
        .unwrap();
    assert_eq!(identity.user_id.as_deref(), Some("u1"));
    assert_eq!(identity.roles, vec![Arc::<str>::from("editor")]);
    assert!(!identity.is_server);
    let mut one_role = good_claims();
    one_role["roles"] = json!("admin");
    let identity = with_secret().identify(&bearer(&hs256(one_role))).unwrap();
    assert_eq!(identity.roles, vec![Arc::<str>::from("admin")]);
}

#[test]
fn bad_tokens_are_refused() {
    let auth = with_secret();
    let mut cases = Vec::new();
    for (field, value) in [
        ("exp", json!(now() - 120)),
        ("nbf", json!(now() + 120)),
        ("iss", json!("https://evil.test")),
        ("aud", json!("other-app")),
        ("sub", json!("")),
    ] {
        let mut claims = good_claims();
        claims[field] = value;
        cases.push((format!("{field} wrong"), hs256(claims)));
    }
    let mut no_exp = good_claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    cases.push(("no exp".into(), hs256(no_exp)));
    let wrong_secret = encode(
        &Header::new(Algorithm::HS256),
        &good_claims(),
        &EncodingKey::from_secret(b"another-secret-another-secret-xx"),
    )
    .unwrap();
    cases.push(("wrong secret".into(), wrong_secret));
    // alg: none, hand-made (the library refuses to make one).
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(good_claims().to_string())
    );
    cases.push(("alg none".into(), none));
    cases.push(("garbage".into(), "not.a.token".into()));
    for (case, token) in cases {
        let refused = auth.identify(&bearer(&token));
        assert!(refused.is_err(), "{case} was accepted");
        assert_eq!(
            refused.unwrap_err().status,
            axum::http::StatusCode::UNAUTHORIZED
        );
    }
}

#[test]
fn small_clock_skew_is_tolerated() {
    let mut claims = good_claims();
    claims["exp"] = json!(now() - 5);
    assert!(with_secret().identify(&bearer(&hs256(claims))).is_ok());
}

#[test]
fn rs256_verifies_with_the_public_key_and_refuses_algorithm_confusion() {
    let auth = Authenticator::new(AuthSettings {
        jwt: Some(JwtKey::Rs256(PUBLIC.to_vec())),
        ..Default::default()
    })
    .unwrap();
    let claims = json!({"sub": "u2", "exp": now() + 60});
    let signed = encode(
        &Header::new(Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(PRIVATE).unwrap(),
    )
    .unwrap();
    assert_eq!(
        auth.identify(&bearer(&signed)).unwrap().user_id.as_deref(),
        Some("u2")
    );
    // An HS256 token "signed" with the public key as the HMAC secret.
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(PUBLIC),
    )
    .unwrap();
    assert!(auth.identify(&bearer(&confused)).is_err());
}

#[test]
fn api_keys_and_their_roles() {
    let auth = with_secret();
    let key = |k: &str| Credentials {
        bearer: None,
        api_key: Some(k.into()),
    };
    assert!(auth.identify(&key("server-key")).unwrap().is_server);
    let client = auth.identify(&key("client-key")).unwrap();
    assert!(!client.is_server && client.user_id.is_none());
    assert!(auth.identify(&key("server-ke")).is_err());
    assert!(auth.identify(&key("")).is_err());
}

#[test]
fn service_accounts_get_a_server_token() {
    let auth = with_secret();
    assert_eq!(auth.service_token("backend", "wrong"), None);
    assert_eq!(auth.service_token("nobody", "s3cret"), None);
    let token = auth.service_token("backend", "s3cret").unwrap();
    let identity = auth.identify(&bearer(&token)).unwrap();
    assert!(identity.is_server);
    assert_eq!(identity.user_id.as_deref(), Some("serviceaccount:backend"));
    // Another process (another signing secret) does not accept it.
    assert!(Authenticator::default().identify(&bearer(&token)).is_err());
}

#[test]
fn without_configuration_only_anonymous_callers_pass() {
    let auth = Authenticator::default();
    assert_eq!(
        auth.identify(&Credentials::default()).unwrap(),
        Identity::anonymous()
    );
    assert!(auth.identify(&bearer(&hs256(good_claims()))).is_err());
    assert!(auth
        .identify(&Credentials {
            bearer: None,
            api_key: Some("x".into())
        })
        .is_err());
}

#[test]
fn short_secrets_are_refused() {
    let short = AuthSettings {
        jwt: Some(JwtKey::Hs256(b"short".to_vec())),
        ..Default::default()
    };
    assert!(matches!(
        Authenticator::new(short),
        Err(AuthConfigError::ShortSecret)
    ));
}

#[test]
fn connection_tokens_carry_the_identity_they_were_made_for() {
    let auth = with_secret();
    let user = auth.identify(&bearer(&hs256(good_claims()))).unwrap();
    let token = auth.connection_token(&user).unwrap();
    assert_eq!(auth.identify(&bearer(&token)).unwrap(), user);
    let server = Identity {
        is_server: true,
        ..Identity::default()
    };
    let token = auth.connection_token(&server).unwrap();
    assert!(auth.identify(&bearer(&token)).unwrap().is_server);
    let anonymous = auth.connection_token(&Identity::anonymous()).unwrap();
    assert_eq!(
        auth.identify(&bearer(&anonymous)).unwrap(),
        Identity::anonymous()
    );
    // Not usable as a service token elsewhere, nor by another process.
    assert!(Authenticator::default().identify(&bearer(&token)).is_err());
}

#[test]
fn ownership_rule() {
    let anonymous = Identity::anonymous();
    let alice = Identity {
        user_id: Some("alice".into()),
        ..Identity::default()
    };
    let bob = Identity {
        user_id: Some("bob".into()),
        ..Identity::default()
    };
    let server = Identity {
        is_server: true,
        ..Identity::default()
    };
    assert!(may_act_on(&alice, &alice));
    assert!(!may_act_on(&bob, &alice));
    assert!(!may_act_on(&anonymous, &alice));
    assert!(
        may_act_on(&bob, &anonymous),
        "anonymous connections are bearer capabilities"
    );
    assert!(may_act_on(&server, &alice));
}

#[test]
fn a_user_named_like_a_service_account_owns_nothing_of_it() {
    let auth = Authenticator::new(AuthSettings {
        jwt: Some(JwtKey::Hs256(SECRET.to_vec())),
        service_accounts: vec![ServiceAccount {
            client_id: "ops".into(),
            client_secret: "s3cret".into(),
        }],
        ..AuthSettings::default()
    })
    .unwrap();
    let account = auth
        .identify(&bearer(&auth.service_token("ops", "s3cret").unwrap()))
        .unwrap();
    let mut claims = good_claims();
    claims["sub"] = serde_json::json!("serviceaccount:ops");
    let impostor = auth.identify(&bearer(&hs256(claims))).unwrap();
    assert_eq!(
        account.user_id, impostor.user_id,
        "the same string, two kinds"
    );
    // The service account is the server identity, so ownership is tested on a connection
    // that belongs to it without that flag: only the kind tells the two apart.
    let owner = Identity {
        is_server: false,
        ..account.clone()
    };
    assert!(!may_act_on(&impostor, &owner));
    assert!(may_act_on(&account, &owner));
    // The kind survives a connection token.
    let token = auth.connection_token(&account).unwrap();
    assert_eq!(auth.identify(&bearer(&token)).unwrap().kind, account.kind);
}
