//! The reader never panics, whatever the input.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(s in any::<String>()) {
        let _ = chorus_conf::parse_str_with_env(&s, None, &|_| None);
    }

    #[test]
    fn config_like_text_never_panics(
        s in proptest::collection::vec(
            prop_oneof![
                Just("a"), Just(" "), Just("\n"), Just("="), Just(":"), Just("{"), Just("}"),
                Just("["), Just("]"), Just("("), Just(")"), Just("\""), Just("'"), Just("\\"),
                Just("#"), Just("//"), Just("/"), Just(";"), Just(","), Just("$a"), Just("$"),
                Just("1"), Just("-"), Just("."), Just("k"), Just("b"), Just("2016-"),
                Just("include "), Just("true"), Just("\\x4"), Just("\r"), Just("\t"), Just("é"),
            ],
            0..60,
        )
    ) {
        let text: String = s.concat();
        if let Ok(map) = chorus_conf::parse_str_with_env(&text, None, &|_| None) {
            // Whatever parses must also be interpretable without panicking.
            let _ = chorus_conf::Options::from_map(&map);
        }
    }

    #[test]
    fn environment_values_never_panic(v in any::<String>()) {
        let lookup = |_: &str| Some(v.clone());
        let _ = chorus_conf::parse_str_with_env("x = $ANY", None, &lookup);
    }
}
