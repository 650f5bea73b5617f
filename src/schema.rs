//! Reading TOML tables into typed values. Every missing, mistyped or unknown key becomes a
//! diagnostic instead of stopping the read, so one run reports every problem in a file;
//! unknown keys get a did-you-mean from the keys the reader asked for.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, SourceText};

/// Parses a TOML document, turning every syntax error into a diagnostic.
pub fn parse_document<'i>(
    src: &SourceText<'_>,
    text: &'i str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Spanned<DeTable<'i>>> {
    let (table, errors) = DeTable::parse_recoverable(text);
    if errors.is_empty() {
        return Some(table);
    }
    for e in errors {
        let span = e.span().unwrap_or(0..0);
        diags.push(
            src.error(span, format!("invalid TOML: {}", e.message().trim_end()))
                .expected("TOML syntax, see https://toml.io"),
        );
    }
    None
}

/// A view of one TOML table that remembers which keys were asked for.
pub struct TableReader<'s, 'i> {
    src: SourceText<'s>,
    table: &'s DeTable<'i>,
    span: Range<usize>,
    /// How the table is named in messages: `front matter`, `[site]`.
    name: String,
    asked: Vec<&'static str>,
}

/// A string value and where it was written.
pub type Located<T> = (T, Range<usize>);

impl<'s, 'i> TableReader<'s, 'i> {
    pub fn new(
        src: SourceText<'s>,
        table: &'s DeTable<'i>,
        span: Range<usize>,
        name: impl Into<String>,
    ) -> Self {
        TableReader {
            src,
            table,
            span,
            name: name.into(),
            asked: Vec::new(),
        }
    }

    pub fn source(&self) -> SourceText<'s> {
        self.src
    }

    pub fn span(&self) -> Range<usize> {
        self.span.clone()
    }

    /// The raw value of `key`, if present. Marks the key as known.
    pub fn raw(&mut self, key: &'static str) -> Option<&'s Spanned<DeValue<'i>>> {
        self.asked.push(key);
        self.table.get(key)
    }

    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> Diagnostic {
        self.src.error(span, message)
    }

    /// A diagnostic for a key that must be present but is not.
    pub fn missing(&self, key: &str, example: &str) -> Diagnostic {
        self.src
            .error(
                self.span.start..self.span.start,
                format!("{} has no `{key}`", self.name),
            )
            .expected(format!("a line like {example}"))
    }

    fn wrong_type(&self, key: &str, value: &Spanned<DeValue<'_>>, want: &str) -> Diagnostic {
        self.src
            .error(
                value.span(),
                format!("`{key}` is {}", article(value.get_ref().type_str())),
            )
            .expected(want.to_string())
    }

    pub fn string(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Located<String>> {
        let value = self.raw(key)?;
        match value.get_ref().as_str() {
            Some(s) => Some((s.to_string(), value.span())),
            None => {
                diags.push(self.wrong_type(key, value, "a string in quotes"));
                None
            }
        }
    }

    pub fn required_string(
        &mut self,
        key: &'static str,
        example: &str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Located<String>> {
        if self.table.get(key).is_none() {
            self.asked.push(key);
            diags.push(self.missing(key, example));
            return None;
        }
        self.string(key, diags)
    }

    pub fn bool(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Located<bool>> {
        let value = self.raw(key)?;
        match value.get_ref().as_bool() {
            Some(b) => Some((b, value.span())),
            None => {
                diags.push(self.wrong_type(key, value, "true or false"));
                None
            }
        }
    }

    pub fn integer(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Located<i64>> {
        let value = self.raw(key)?;
        let parsed = value
            .get_ref()
            .as_integer()
            .and_then(|i| i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok());
        match parsed {
            Some(n) => Some((n, value.span())),
            None => {
                diags.push(self.wrong_type(key, value, "a whole number"));
                None
            }
        }
    }

    /// A list of strings; a single string is accepted as a list of one.
    pub fn string_list(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<Vec<Located<String>>> {
        let value = self.raw(key)?;
        if let Some(s) = value.get_ref().as_str() {
            return Some(vec![(s.to_string(), value.span())]);
        }
        let Some(array) = value.get_ref().as_array() else {
            diags.push(self.wrong_type(key, value, r#"a list of strings like ["a", "b"]"#));
            return None;
        };
        let mut out = Vec::new();
        for item in array.iter() {
            match item.get_ref().as_str() {
                Some(s) => out.push((s.to_string(), item.span())),
                None => diags.push(
                    self.src
                        .error(
                            item.span(),
                            format!(
                                "an item of `{key}` is {}",
                                article(item.get_ref().type_str())
                            ),
                        )
                        .expected("a string in quotes"),
                ),
            }
        }
        Some(out)
    }

    /// A nested table, as a reader of its own.
    pub fn table(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<TableReader<'s, 'i>> {
        let name = format!("[{key}]");
        let value = self.raw(key)?;
        match value.get_ref().as_table() {
            Some(t) => Some(TableReader::new(self.src, t, value.span(), name)),
            None => {
                diags.push(self.wrong_type(key, value, "a table"));
                None
            }
        }
    }

    /// An array of tables (`[[key]]` or `key = [{...}]`), each as a reader.
    pub fn tables(
        &mut self,
        key: &'static str,
        diags: &mut Vec<Diagnostic>,
    ) -> Vec<TableReader<'s, 'i>> {
        let Some(value) = self.raw(key) else {
            return Vec::new();
        };
        let Some(array) = value.get_ref().as_array() else {
            diags.push(self.wrong_type(key, value, "a list of tables"));
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in array.iter().enumerate() {
            match item.get_ref().as_table() {
                Some(t) => out.push(TableReader::new(
                    self.src,
                    t,
                    item.span(),
                    format!("{key}[{}]", i + 1),
                )),
                None => diags.push(
                    self.src
                        .error(
                            item.span(),
                            format!(
                                "an item of `{key}` is {}",
                                article(item.get_ref().type_str())
                            ),
                        )
                        .expected("a table like { name = \"...\" }"),
                ),
            }
        }
        out
    }

    /// A table whose keys are names the user chooses (`[topics."Miljö"]`): each key, where
    /// it was written, and its value as a table of its own, in the order written. A value
    /// that is not a table is reported.
    pub fn named_tables(self, diags: &mut Vec<Diagnostic>) -> Vec<(Located<String>, Self)> {
        let mut out: Vec<(Located<String>, Self)> = Vec::new();
        for (key, value) in self.table.iter() {
            let name = key.get_ref().as_ref().to_string();
            match value.get_ref().as_table() {
                Some(t) => {
                    let reader = TableReader::new(
                        self.src,
                        t,
                        value.span(),
                        format!("{} \"{name}\"", self.name),
                    );
                    out.push(((name, key.span()), reader));
                }
                None => diags.push(self.wrong_type(&name, value, "a table")),
            }
        }
        out.sort_by_key(|((_, span), _)| span.start);
        out
    }

    /// Reports every key nobody asked for, with the closest known key as a suggestion.
    pub fn finish(self, diags: &mut Vec<Diagnostic>) {
        for (key, _) in self.table.iter() {
            let name = key.get_ref().as_ref();
            if self.asked.contains(&name) {
                continue;
            }
            let mut d = self
                .src
                .error(key.span(), format!("unknown key `{name}` in {}", self.name));
            d = match did_you_mean(name, &self.asked) {
                Some(best) => d.expected(format!("did you mean `{best}`?")),
                None => d.expected(format!("one of: {}", self.asked.join(", "))),
            };
            diags.push(d);
        }
    }
}

/// The known name closest to `name`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = name.to_lowercase();
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(&lower, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

fn article(type_str: &str) -> String {
    match type_str.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {type_str}"),
        _ => format!("a {type_str}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn read(text: &str) -> Vec<String> {
        let src = SourceText::whole(Path::new("c.toml"), text);
        let mut diags = Vec::new();
        let doc = parse_document(&src, text, &mut diags).expect("valid toml");
        let mut r = TableReader::new(src, doc.get_ref(), doc.span(), "front matter");
        r.required_string("title", "title = \"...\"", &mut diags);
        r.bool("draft", &mut diags);
        r.string_list("topics", &mut diags);
        r.finish(&mut diags);
        diags.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn unknown_keys_get_a_suggestion() {
        let out = read("title = \"x\"\ntopcs = [\"a\"]\n");
        assert_eq!(
            out,
            ["c.toml:2:1: unknown key `topcs` in front matter (did you mean `topics`?)"]
        );
    }

    #[test]
    fn every_problem_is_reported() {
        let out = read("draft = \"yes\"\ntopics = [1]\n");
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(out[0].contains("has no `title`"));
        assert!(out[1].starts_with("c.toml:1:9: `draft` is a string (true or false)"));
        assert!(out[2].starts_with("c.toml:2:11: an item of `topics` is an integer"));
    }
}
