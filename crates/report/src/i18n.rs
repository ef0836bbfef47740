//! The three languages, as Fluent bundles built from `i18n/*.ftl`.

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource, FluentValue};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Kk,
    Ru,
    En,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Kk, Lang::Ru, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Kk => "kk",
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lang::Kk => include_str!("../i18n/kk.ftl"),
            Lang::Ru => include_str!("../i18n/ru.ftl"),
            Lang::En => include_str!("../i18n/en.ftl"),
        }
    }
}

impl std::str::FromStr for Lang {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "kk" | "kz" => Ok(Lang::Kk),
            "ru" => Ok(Lang::Ru),
            "en" => Ok(Lang::En),
            other => Err(format!("{other:?}: choose kk, ru or en")),
        }
    }
}

pub struct Texts {
    bundle: FluentBundle<FluentResource>,
    pub lang: Lang,
}

impl Texts {
    pub fn new(lang: Lang) -> Self {
        let resource = FluentResource::try_new(lang.source().to_owned())
            .unwrap_or_else(|(_, errors)| panic!("{}.ftl does not parse: {errors:?}", lang.code()));
        let id: unic_langid::LanguageIdentifier = lang.code().parse().expect("valid language id");
        let mut bundle = FluentBundle::new(vec![id]);
        // Isolation marks would show as boxes in fonts without them, and in plain text.
        bundle.set_use_isolating(false);
        bundle
            .add_resource(resource)
            .expect("message ids are unique");
        Self { bundle, lang }
    }

    pub fn get(&self, id: &str) -> String {
        self.format(id, None)
    }

    pub fn with(&self, id: &str, args: &[(&str, String)]) -> String {
        let mut fa = FluentArgs::new();
        for (k, v) in args {
            fa.set(*k, FluentValue::from(v.clone()));
        }
        self.format(id, Some(&fa))
    }

    fn format(&self, id: &str, args: Option<&FluentArgs>) -> String {
        let Some(pattern) = self.bundle.get_message(id).and_then(|m| m.value()) else {
            panic!("message {id} missing from {}.ftl", self.lang.code());
        };
        let mut errors = Vec::new();
        let text = self.bundle.format_pattern(pattern, args, &mut errors);
        debug_assert!(errors.is_empty(), "{id}: {errors:?}");
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message of the English file exists in the others, and no file has extras.
    #[test]
    fn all_languages_have_the_same_messages() {
        let ids = |lang: Lang| -> Vec<String> {
            let mut v: Vec<String> = lang
                .source()
                .lines()
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim().to_owned()))
                .filter(|k| !k.starts_with('#') && !k.is_empty())
                .collect();
            v.sort();
            v
        };
        let en = ids(Lang::En);
        assert!(en.len() > 40);
        for lang in [Lang::Kk, Lang::Ru] {
            assert_eq!(ids(lang), en, "{}", lang.code());
            let t = Texts::new(lang);
            for id in &en {
                assert!(!t.get_raw_ok(id).is_empty(), "{id}");
            }
        }
    }

    impl Texts {
        fn get_raw_ok(&self, id: &str) -> String {
            let mut errors = Vec::new();
            let m = self.bundle.get_message(id).unwrap().value().unwrap();
            self.bundle
                .format_pattern(m, None, &mut errors)
                .into_owned()
        }
    }

    #[test]
    fn arguments_are_substituted_without_isolation_marks() {
        let t = Texts::new(Lang::Kk);
        let s = t.with("probability", &[("p", "0.97".into())]);
        assert!(s.ends_with("0.97"), "{s}");
        assert!(!s.contains('\u{2068}'));
    }
}
