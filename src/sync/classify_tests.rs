use super::*;

fn http(status: u16, code: Option<&str>) -> Failure {
    Failure { status: Some(status), code: code.map(str::to_owned), message: "m".into(), ..Failure::default() }
}

fn pg(code: &str) -> Failure {
    Failure { code: Some(code.to_owned()), message: "m".into(), ..Failure::default() }
}

#[test]
fn code_wins_over_status() {
    // PostgREST ≥ 12.2 answers 500 for 21000; a client going by status would retry it forever.
    assert_eq!(classify(&http(500, Some("21000"))), Class::Duplicate);
    assert_eq!(classify(&http(400, Some("21000"))), Class::Duplicate, "before 12.2 it was a 400");
    assert_eq!(classify(&http(500, Some("57014"))), Class::Slow);
    assert_eq!(classify(&http(500, Some("40001"))), Class::Retry);
    assert_eq!(classify(&http(500, None)), Class::Retry);
    assert_eq!(classify(&http(409, Some("23503"))), Class::MissingParent);
    assert_eq!(classify(&http(409, Some("23505"))), Class::Poison);
    assert_eq!(classify(&http(400, Some("22P02"))), Class::Poison);
    assert_eq!(classify(&http(400, Some("23514"))), Class::Poison);
    assert_eq!(classify(&http(400, Some("23502"))), Class::Poison);
    assert_eq!(classify(&http(400, Some("PGRST204"))), Class::Stop, "a missing column fails every row alike");
    assert_eq!(classify(&http(400, Some("PGRST102"))), Class::Stop);
    assert_eq!(classify(&http(405, Some("25006"))), Class::Retry);
}

#[test]
fn configuration_and_credentials_stop() {
    for (status, code) in [
        (401, Some("PGRST301")),
        (401, Some("42501")),
        (403, Some("42501")),
        (404, Some("PGRST205")),
        (404, Some("PGRST125")),
        (401, None), // Supabase gateway: {"message":"Invalid API key"}
        (403, None),
        (404, None),
    ] {
        assert_eq!(classify(&http(status, code)), Class::Stop, "{status} {code:?}");
    }
    for code in ["28P01", "28000", "3D000", "42P01", "42501"] {
        assert_eq!(classify(&pg(code)), Class::Stop, "{code}");
    }
}

#[test]
fn transient_answers_retry() {
    for status in [429, 502, 503, 500] {
        assert_eq!(classify(&http(status, None)), Class::Retry, "{status}");
    }
    for code in ["PGRST000", "PGRST001", "PGRST002", "PGRST003", "08006", "53300", "57P01", "40P01", "XX000"] {
        assert_eq!(classify(&pg(code)), Class::Retry, "{code}");
    }
    assert_eq!(classify(&pg("57014")), Class::Slow);
    assert_eq!(classify(&http(504, None)), Class::Slow);
    assert_eq!(classify(&http(413, None)), Class::TooLarge);
    let timeout = Failure { transport: Some(Transport::Timeout), ..Failure::default() };
    let reset = Failure { transport: Some(Transport::Connection), ..Failure::default() };
    assert_eq!(classify(&timeout), Class::Slow);
    assert_eq!(classify(&reset), Class::Retry);
}

#[test]
fn unknown_codes_fall_back_to_the_status() {
    assert_eq!(classify(&http(400, Some("P9999"))), Class::Poison);
    assert_eq!(classify(&http(503, Some("ZZ999"))), Class::Retry);
    assert_eq!(classify(&http(400, Some(""))), Class::Poison);
}

#[test]
fn descriptions_say_what_to_do() {
    let auth = describe(&http(401, Some("PGRST301")), Class::Stop);
    assert!(auth.contains("credentials") && auth.contains("[sync] key"), "{auth}");
    let table = describe(&http(404, Some("PGRST205")), Class::Stop);
    assert!(table.contains("nexero sync schema"), "{table}");
    let down = describe(&Failure { message: "connection refused".into(), transport: Some(Transport::Connection), ..Failure::default() }, Class::Retry);
    assert!(down.contains("unreachable") && down.contains("connection refused"), "{down}");
}

#[test]
fn jwt_detection() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.dGVzdC1zaWduYXR1cmU";
    assert!(is_jwt(jwt));
    assert!(is_jwt("a.b.c"));
    assert!(!is_jwt("sb_secret_abcdefghijklmnop"));
    assert!(!is_jwt("sb_publishable_x"));
    assert!(!is_jwt("a.b"));
    assert!(!is_jwt("a..c"));
    assert!(!is_jwt("a.b.c.d"));
    assert!(!is_jwt("a.b c.d"));
    assert!(!is_jwt("a+b.c.d"), "base64 (not url) characters");
    assert!(!is_jwt(""));
}
