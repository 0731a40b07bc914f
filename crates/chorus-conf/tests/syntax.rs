//! The configuration language: every syntax form, includes, variables, units, errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chorus_conf::{ConfError, Map, ValueKind, parse_file, parse_str, parse_str_with_env};

fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(p)
}

fn parse(s: &str) -> Map {
    parse_str(s, None).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn parse_err(s: &str) -> ConfError {
    match parse_str(s, None) {
        Ok(m) => panic!("{s:?} parsed as {:?}", m.to_json()),
        Err(e) => e,
    }
}

fn with_env<'a>(vars: &'a HashMap<&'a str, &'a str>) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| vars.get(name).map(|v| v.to_string())
}

#[test]
fn every_syntax_form_matches_golden_json() {
    let map = parse_file(&testdata("syntax/all_forms.conf")).unwrap();
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(testdata("syntax/all_forms.json")).unwrap())
            .unwrap();
    assert_eq!(map.to_json(), golden);
    // Key order is the file's order.
    let keys: Vec<&str> = map.keys().take(6).collect();
    assert_eq!(keys, ["a", "b", "c", "d", "e", "f"]);
}

#[test]
fn values_remember_their_key_line_and_file() {
    let path = testdata("syntax/all_forms.conf");
    let map = parse_file(&path).unwrap();
    assert_eq!(map.get("a").unwrap().line, 3);
    assert_eq!(map.get("n").unwrap().line, 14);
    let n = map.get("n").unwrap().as_map().unwrap();
    assert_eq!(n.get("after_nl").unwrap().line, 16);
    // Array elements keep their own lines.
    let o = map.get("o").unwrap().as_array().unwrap();
    assert_eq!(o.iter().map(|v| v.line).collect::<Vec<_>>(), [19, 19, 19, 20, 21]);
    assert_eq!(map.get("a").unwrap().file(), Some(path.as_path()));
}

#[test]
fn separators_and_terminators() {
    for src in ["a = 1", "a: 1", "a 1", "a=1;", "a:1,", "  a \t =\t 1 # c", "a\n1"] {
        assert_eq!(parse(src).get("a").unwrap().as_int(), Some(1), "{src:?}");
    }
    let m = parse("a = 1; b = 2, c = 3\nd { e = 4; f = 5, g = 6\n h 7 }");
    let d = m.get("d").unwrap().as_map().unwrap();
    assert_eq!(m.get("c").unwrap().as_int(), Some(3));
    assert_eq!(d.get("g").unwrap().as_int(), Some(6));
    assert_eq!(d.get("h").unwrap().as_int(), Some(7));
    // A map value may follow its separator on a later line, a top-level one may not.
    assert_eq!(parse("m {\n a =\n 5\n}").get("m").unwrap().as_map().unwrap().len(), 1);
    assert!(parse_err("a =\n5").to_string().contains("Expected value but found new line"));
}

#[test]
fn json_style_documents() {
    let m = parse_file(&testdata("syntax/json_style.conf")).unwrap();
    assert_eq!(m.get("server_name").unwrap().as_str(), Some("json-style"));
    assert_eq!(m.get("port").unwrap().as_int(), Some(4333));
    let auth = m.get("authorization").unwrap().as_map().unwrap();
    assert_eq!(auth.get("password").unwrap().as_str(), Some("p"));
}

#[test]
fn booleans_every_spelling() {
    for (s, b) in [("true", true), ("YES", true), ("On", true), ("false", false), ("no", false)] {
        assert_eq!(parse(&format!("x = {s}")).get("x").unwrap().as_bool(), Some(b), "{s}");
    }
    assert_eq!(parse("x = \"true\"").get("x").unwrap().as_str(), Some("true"));
    assert_eq!(parse("x = offset").get("x").unwrap().as_str(), Some("offset"));
}

#[test]
fn size_suffixes() {
    let cases: &[(&str, i64)] = &[
        ("1k", 1000),
        ("1K", 1000),
        ("1kb", 1024),
        ("1KB", 1024),
        ("1ki", 1024),
        ("1KiB", 1024),
        ("2m", 2_000_000),
        ("2mb", 2 << 20),
        ("2MiB", 2 << 20),
        ("3g", 3_000_000_000),
        ("3gb", 3 << 30),
        ("3Gi", 3 << 30),
        ("4t", 4_000_000_000_000),
        ("4tb", 4 << 40),
        ("5p", 5_000_000_000_000_000),
        ("5pib", 5 << 50),
        ("1e", 1_000_000_000_000_000_000),
        ("1eb", 1 << 60),
        ("-1k", -1000),
        ("-2mb", -(2 << 20)),
    ];
    for (s, n) in cases {
        assert_eq!(parse(&format!("x = {s}")).get("x").unwrap().as_int(), Some(*n), "{s}");
    }
    let e = parse_err("x = 8eb");
    assert!(e.to_string().contains("out of the range"), "{e}");
    // Letters after a suffix make a plain string, as in nats-server.
    assert_eq!(parse("x = 1mx").get("x").unwrap().as_str(), Some("1mx"));
    assert_eq!(parse("x = 5e7bcd").get("x").unwrap().as_str(), Some("5e7bcd"));
}

#[test]
fn numbers_strings_and_addresses() {
    let m = parse("a = 1.5\nb = 1.2.3.4\nc = 10s\nd = 100ms\ne = 720h\nf = 127.0.0.1:4222\ng = -3");
    assert_eq!(m.get("a").unwrap().as_float(), Some(1.5));
    assert_eq!(m.get("b").unwrap().as_str(), Some("1.2.3.4"));
    assert_eq!(m.get("c").unwrap().as_str(), Some("10s"));
    assert_eq!(m.get("d").unwrap().as_str(), Some("100ms"));
    assert_eq!(m.get("e").unwrap().as_str(), Some("720h"));
    assert_eq!(m.get("f").unwrap().as_str(), Some("127.0.0.1:4222"));
    assert_eq!(m.get("g").unwrap().as_int(), Some(-3));
    // nats-server: "Expected a top-level value to end with a new line, comment or EOF,
    // but got 's' instead." An unquoted fractional duration is a float and then junk.
    assert!(parse_err("x = 1.5s").to_string().contains("but got 's' instead"));
    // nats-server: "All ISO8601 dates must be in full Zulu form."
    assert!(parse_err("x = 2-3").to_string().contains("ISO8601"));
    assert!(parse_err("x = .5").to_string().contains("Floats must start with a digit"));
    // Lenient where nats-server's lexer is broken: `[1]` is an array of one integer.
    assert_eq!(parse("x = [1]").get("x").unwrap().as_array().unwrap()[0].as_int(), Some(1));
}

#[test]
fn datetimes() {
    let m = parse("t = 2016-05-04T18:53:41Z");
    let ValueKind::Datetime(d) = m.get("t").unwrap().kind else { panic!() };
    assert_eq!((d.year, d.month, d.day, d.hour, d.minute, d.second), (2016, 5, 4, 18, 53, 41));
    assert!(parse_err("t = 2016-13-04T18:53:41Z").to_string().contains("Zulu"));
    assert!(parse_err("t = 2016-05-04 18:53:41Z").to_string().contains("ISO8601"));
}

#[test]
fn strings_quoted_raw_and_blocks() {
    let m = parse(
        "a = \"tab\\there \\\"q\\\" \\x48\\x49 \\\\ nl\\n\"\nb = 'no \\t escapes'\nc = (\nline 1\n  line 2 )\n)\n",
    );
    assert_eq!(m.get("a").unwrap().as_str(), Some("tab\there \"q\" HI \\ nl\n"));
    assert_eq!(m.get("b").unwrap().as_str(), Some("no \\t escapes"));
    // A `)` closes the block only alone on its line.
    assert_eq!(m.get("c").unwrap().as_str(), Some("\nline 1\n  line 2 )\n"));
    // Multi-byte UTF-8 passes through, and \x escapes may build it.
    let m = parse("u = \"h\\xc3\\xa9llo wörld\"");
    assert_eq!(m.get("u").unwrap().as_str(), Some("héllo wörld"));
    let e = parse_err("a = \"bad \\q escape\"");
    assert!(e.to_string().contains("Invalid escape character 'q'"), "{e}");
    assert!(parse_err("a = \"open").to_string().contains("Unexpected EOF"));
    assert!(parse_err("a = \"\\xZZ\"").to_string().contains("hexadecimal"));
}

#[test]
fn arrays_and_maps() {
    let m = parse("a = [1, two, \"three\", [4], {five: 5}]\nb [\n  x\n  y, z\n]\nc {}\nd []");
    let a = m.get("a").unwrap().as_array().unwrap();
    assert_eq!(a.len(), 5);
    assert_eq!(a[3].as_array().unwrap()[0].as_int(), Some(4));
    assert_eq!(a[4].as_map().unwrap().get("five").unwrap().as_int(), Some(5));
    let b: Vec<&str> =
        m.get("b").unwrap().as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(b, ["x", "y", "z"]);
    assert!(m.get("c").unwrap().as_map().unwrap().is_empty());
    assert!(m.get("d").unwrap().as_array().unwrap().is_empty());
    assert!(parse_err("a = [1,,2]").to_string().contains("Unexpected array value terminator"));
    assert!(parse_err("a = [1 2]").to_string().contains("array value terminator"));
    assert!(parse_err("a { b = 1 c = 2 }").to_string().contains("map value terminator"));
    assert!(parse_err("a { b = 1").to_string().contains("but got 'EOF'"));
    assert!(parse_err("a { b = 1\n").to_string().contains("Unexpected EOF processing map"));
}

#[test]
fn later_assignment_wins() {
    let m = parse("a = 1\nb = 2\na = 3");
    assert_eq!(m.get("a").unwrap().as_int(), Some(3));
    assert_eq!(m.get("a").unwrap().line, 3);
    assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b"]);
}

#[test]
fn include_relative_to_including_file() {
    let m = parse_file(&testdata("include/main.conf")).unwrap();
    // child.conf overrides the earlier server_name; port comes after the include.
    assert_eq!(m.get("server_name").unwrap().as_str(), Some("from_child"));
    assert_eq!(m.get("port").unwrap().as_int(), Some(4333));
    // grandchild.conf is found next to child.conf, not next to main.conf.
    let mp = m.get("max_payload").unwrap();
    assert_eq!(mp.as_int(), Some(2 << 20));
    assert_eq!(mp.file(), Some(testdata("include/sub/grandchild.conf").as_path()));
    assert_eq!(mp.line, 1);
    assert_eq!(m.get("debug").unwrap().as_bool(), Some(true));
}

#[test]
fn include_from_parse_str_uses_base_dir() {
    let m = parse_str("include \"sub/grandchild.conf\"\n", Some(&testdata("include"))).unwrap();
    assert_eq!(m.get("debug").unwrap().as_bool(), Some(true));
}

#[test]
fn include_errors_name_the_file_and_line() {
    // nats-server: error parsing include file './does_not_exist.conf', open
    // include/does_not_exist.conf: no such file or directory
    let e = parse_file(&testdata("include/missing.conf")).unwrap_err();
    let ConfError::Include { path, line, .. } = &e else { panic!("{e:?}") };
    assert_eq!((path.as_str(), *line), ("./does_not_exist.conf", 2));
    assert!(e.to_string().contains("does_not_exist.conf"), "{e}");

    let e = parse_file(&testdata("include/bad_child.conf")).unwrap_err();
    let ConfError::Include { source, .. } = &e else { panic!("{e:?}") };
    let ConfError::Parse { file, .. } = source.as_ref() else { panic!("{source:?}") };
    assert_eq!(file.as_deref(), Some(testdata("include/./sub/broken.conf").as_path()));

    let e = parse_file(&testdata("include/cycle.conf")).unwrap_err();
    assert!(e.to_string().contains("nested too deeply"), "{e}");
    // `include:` with a separator is an ordinary key.
    assert_eq!(parse("include: 5").get("include").unwrap().as_int(), Some(5));
}

#[test]
fn variables_resolve_innermost_first_then_environment() {
    let env = HashMap::from([
        ("CHORUS_CONF_TEST_CLUSTER_NAME", "from-env"),
        ("CHORUS_CONF_TEST_CLUSTER_PORT", "6222"),
        ("SERVER_NAME_VAR", "nats-7"),
    ]);
    let src = std::fs::read_to_string(testdata("vars.conf")).unwrap();
    let m = parse_str_with_env(&src, None, &with_env(&env)).unwrap();
    assert_eq!(m.get("port").unwrap().as_int(), Some(4334));
    let auth = m.get("authorization").unwrap().as_map().unwrap();
    assert_eq!(auth.get("password").unwrap().as_str(), Some("inner-secret"));
    let cluster = m.get("cluster").unwrap().as_map().unwrap();
    assert_eq!(cluster.get("name").unwrap().as_str(), Some("from-env"));
    // Environment text is parsed as a value: "6222" is an integer.
    assert_eq!(cluster.get("port").unwrap().as_int(), Some(6222));
    assert_eq!(cluster.get("port").unwrap().line, 12);
    assert_eq!(m.get("server_name").unwrap().as_str(), Some("nats-7"));
    // Keys read as variables are marked, so they raise no "unknown field" warning later.
    assert!(m.entry("PORT").unwrap().used_as_variable);
    assert!(!m.entry("SECRET").unwrap().used_as_variable);
}

#[test]
fn variables_in_arrays_and_from_env_values() {
    let env = HashMap::from([
        ("CHORUS_CONF_TEST_LIST", "[a, b]"),
        ("CHORUS_CONF_TEST_SIZE", "1k"),
        ("CHORUS_CONF_TEST_BOOL", "yes"),
        ("CHORUS_CONF_TEST_A", "$CHORUS_CONF_TEST_B"),
        ("CHORUS_CONF_TEST_B", "$CHORUS_CONF_TEST_A"),
        ("CHORUS_CONF_TEST_BAD", "a b"),
    ]);
    let env = with_env(&env);
    let m = parse_str_with_env(
        "x = 1\narr = [$x, $CHORUS_CONF_TEST_SIZE]\nl = $CHORUS_CONF_TEST_LIST\nb = $CHORUS_CONF_TEST_BOOL",
        None,
        &env,
    )
    .unwrap();
    let arr = m.get("arr").unwrap().as_array().unwrap();
    assert_eq!((arr[0].as_int(), arr[1].as_int()), (Some(1), Some(1000)));
    assert_eq!(m.get("l").unwrap().as_array().unwrap().len(), 2);
    assert_eq!(m.get("b").unwrap().as_bool(), Some(true));
    let e = parse_str_with_env("a = $CHORUS_CONF_TEST_A", None, &env).unwrap_err();
    assert!(e.to_string().contains("variable reference cycle"), "{e}");
    let e = parse_str_with_env("a = $CHORUS_CONF_TEST_BAD", None, &env).unwrap_err();
    assert!(matches!(e, ConfError::BadVariable { line: 1, .. }), "{e}");
    // A variable defined later, or only in a sibling block, is not visible.
    let e = parse_str_with_env("a { x = 1 }\nb { y = $x }", None, &env).unwrap_err();
    assert!(matches!(e, ConfError::UndefinedVariable { line: 2, .. }), "{e}");
}

#[test]
fn undefined_variable_names_variable_and_line() {
    let e = parse_file(&testdata("errors/undefined_var.conf")).unwrap_err();
    // nats-server: variable reference for 'CHORUS_CONF_TEST_SURELY_UNDEFINED_VAR' on line 4
    // can not be found
    let msg = e.to_string();
    assert!(
        msg.ends_with(
            "variable reference for 'CHORUS_CONF_TEST_SURELY_UNDEFINED_VAR' on line 4 can not be \
             found"
        ),
        "{msg}"
    );
}

#[test]
fn quoted_dollar_and_bcrypt_are_literal() {
    let m = parse("a = \"$NOT_A_VAR\"\nb = '$ALSO_NOT'\nc = $2a$11$W2zko751KUvVy59mUTWmpO");
    assert_eq!(m.get("a").unwrap().as_str(), Some("$NOT_A_VAR"));
    assert_eq!(m.get("b").unwrap().as_str(), Some("$ALSO_NOT"));
    assert_eq!(m.get("c").unwrap().as_str(), Some("$2a$11$W2zko751KUvVy59mUTWmpO"));
}

#[test]
fn syntax_errors_name_the_line() {
    // nats-server: Parse error on line 4: 'Expected a map value terminator "," or a map
    // terminator "}", but got 'x' instead.'
    let e = parse_file(&testdata("errors/syntax.conf")).unwrap_err();
    assert_eq!(e.line(), Some(4));
    assert!(e.to_string().contains("but got 'x' instead"), "{e}");
    assert!(e.to_string().contains("syntax.conf: parse error on line 4"), "{e}");
    assert_eq!(parse_err("a = 1\nb").line(), Some(2));
    assert_eq!(parse_err("\n\nx { y: [1,\n 2,, ] }").line(), Some(4));
    assert!(parse_err("= 1").to_string().contains("Unexpected key separator"));
}

#[test]
fn comments_everywhere() {
    let m = parse(
        "# top\n// top2\na = 1 # after\nb { # open\n  c = 2 // after\n  # inside\n}\nd = [ # open\n 1 # one\n // two\n 2\n]",
    );
    assert_eq!(m.get("a").unwrap().as_int(), Some(1));
    assert_eq!(m.get("b").unwrap().as_map().unwrap().get("c").unwrap().as_int(), Some(2));
    assert_eq!(m.get("d").unwrap().as_array().unwrap().len(), 2);
    // `#` inside a bare word is not a comment.
    assert_eq!(parse("a = b#c").get("a").unwrap().as_str(), Some("b#c"));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let src = format!("a = {}", "[".repeat(10_000));
    assert!(parse_err(&src).to_string().contains("nested too deeply"));
}
