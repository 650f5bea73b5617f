//! The minijinja environment: built-in templates, replaced one by one by any file of the
//! same name in `config/templates/`. Output is HTML-escaped unless a value is marked safe.

use std::path::Path;

use minijinja::{AutoEscape, Environment, Error, State, Value, value::ValueKind};

use super::locale::{Labels, Strings};
use crate::diagnostic::Diagnostic;
use crate::release::LangTag;

/// The built-in templates, by name. An override in `config/templates/` uses the same name.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("index.html", include_str!("templates/index.html")),
    ("list.html", include_str!("templates/list.html")),
    ("release.html", include_str!("templates/release.html")),
    ("_press_kit.html", include_str!("templates/_press_kit.html")),
    ("feed_item.html", include_str!("templates/feed_item.html")),
    ("search.html", include_str!("templates/search.html")),
    ("404.html", include_str!("templates/404.html")),
    (
        "_search_form.html",
        include_str!("templates/_search_form.html"),
    ),
    ("mail.txt", include_str!("templates/mail.txt")),
    ("mail.html", include_str!("templates/mail.html")),
    // The daily digest (`mail::digest`).
    ("digest.txt", include_str!("templates/digest.txt")),
    ("digest.html", include_str!("templates/digest.html")),
    // The pages about one's subscription (`render::subscription`).
    (
        "subscription.html",
        include_str!("templates/subscription.html"),
    ),
    (
        "unsubscribe.html",
        include_str!("templates/unsubscribe.html"),
    ),
    (
        "unsubscribed.html",
        include_str!("templates/unsubscribed.html"),
    ),
    (
        "resubscribed.html",
        include_str!("templates/resubscribed.html"),
    ),
    (
        "link-invalid.html",
        include_str!("templates/link-invalid.html"),
    ),
    // Signing up (`render::signup`): the form, its page and answers, the confirmation
    // link's pages and mail.
    (
        "_signup_form.html",
        include_str!("templates/_signup_form.html"),
    ),
    ("subscribe.html", include_str!("templates/subscribe.html")),
    (
        "signup-sent.html",
        include_str!("templates/signup-sent.html"),
    ),
    (
        "signup-invalid.html",
        include_str!("templates/signup-invalid.html"),
    ),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("subscribed.html", include_str!("templates/subscribed.html")),
    (
        "confirm-mail.txt",
        include_str!("templates/confirm-mail.txt"),
    ),
    (
        "confirm-mail.html",
        include_str!("templates/confirm-mail.html"),
    ),
    // A mail's preferences link (`render::preferences`).
    (
        "preferences.html",
        include_str!("templates/preferences.html"),
    ),
    ("erase.html", include_str!("templates/erase.html")),
];

pub struct Templates {
    env: Environment<'static>,
    /// Some built-in is replaced by a file of the press office's.
    overridden: bool,
    /// The words templates print, with the office's `strings.toml` over the built-in ones.
    strings: Strings,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("overridden", &self.overridden)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// The built-in templates alone.
    pub fn built_in() -> Templates {
        let mut env = environment();
        for (name, source) in BUILT_IN {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in template {name}: {e}"));
        }
        Templates {
            env,
            overridden: false,
            strings: Strings::default(),
        }
    }

    /// The built-in templates with this set's words (the office's `strings.toml`): what
    /// serves when the office's templates fail but their words are fine.
    pub fn built_in_with_words(&self) -> Templates {
        Templates {
            strings: self.strings.clone(),
            ..Templates::built_in()
        }
    }

    /// The words of a page in `lang`.
    pub fn labels(&self, lang: &LangTag) -> &Labels {
        self.strings.labels(lang)
    }

    /// Whether a template of the press office's replaces a built-in.
    pub fn overridden(&self) -> bool {
        self.overridden
    }

    /// Built-ins, overridden by any template of the same name in `dir`, and their words by
    /// `dir/strings.toml`. A broken override is reported and the built-in is kept, so the
    /// site still builds.
    pub fn load(dir: &Path) -> (Templates, Vec<Diagnostic>) {
        let mut templates = Templates::built_in();
        let mut diags = Vec::new();
        for (name, _) in BUILT_IN {
            let path = dir.join(name);
            let Ok(source) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut trial = environment();
            match trial.add_template_owned(name.to_string(), source.clone()) {
                Ok(()) => {
                    // Checked on its own first: a syntax error must not leave a half-added template.
                    let _ = templates.env.add_template_owned(name.to_string(), source);
                    templates.overridden = true;
                }
                Err(e) => diags.push(template_error(&path, &e)),
            }
        }
        let (strings, strings_diags) = Strings::load(dir);
        templates.strings = strings;
        diags.extend(strings_diags);
        (templates, diags)
    }

    pub fn render(&self, name: &str, ctx: Value) -> Result<String, Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

/// A template error as `path:line:col: message`.
pub fn template_error(path: &Path, e: &Error) -> Diagnostic {
    let mut d = Diagnostic::file(
        path,
        format!("template error: {}", e.detail().unwrap_or("").trim()),
    )
    .expected("a valid minijinja (Jinja2) template");
    if d.message.ends_with(": ") {
        d.message = format!("template error: {}", e.kind());
    }
    d.line = e.line().unwrap_or(1);
    d
}

/// How many steps one render may take: a runaway template (a loop of loops) fails its
/// build with an error within about a second instead of holding the daemon. The built-in
/// templates render a year archive of 10,000 releases well within it (measured on a corpus
/// of 10,000 releases of one year).
pub const FUEL: u64 = 50_000_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") || name.ends_with(".xml") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(formatter);
    env
}

/// Like minijinja's formatter, but leaves `/` alone so URLs stay readable in the source.
fn formatter(out: &mut minijinja::Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let plain_string = value.kind() == ValueKind::String && !value.is_safe();
    match (state.auto_escape(), value.as_str()) {
        (AutoEscape::Html, Some(s)) if plain_string => {
            let mut escaped = String::with_capacity(s.len());
            pulldown_cmark_escape::escape_html(&mut escaped, s)
                .map_err(|_| Error::new(minijinja::ErrorKind::WriteFailure, "escaping failed"))?;
            out.write_str(&escaped).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
impl Templates {
    /// The built-ins with `name` replaced by `source`, which may call `panic_now(why)`: a
    /// renderer's bug on demand, for the tests of what a panic while rendering refuses.
    pub(crate) fn with_a_bug(name: &str, source: &str) -> Templates {
        let mut templates = Templates::built_in();
        templates
            .env
            .add_function("panic_now", |why: String| -> String { panic!("{why}") });
        templates
            .env
            .add_template_owned(name.to_string(), source.to_string())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        templates
    }
}
