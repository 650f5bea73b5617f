//! Press contacts: a name with an optional role, phone and email, read from a `[[contacts]]`
//! array of tables. Below both config (the organisation's contacts, `[[site.contacts]]`)
//! and release (a release's own, in its front matter), like `topic` and `lang`, so both
//! read them by the same rules.

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::schema::TableReader;

/// One press contact.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Contact {
    pub name: String,
    pub role: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// The `contacts` array of tables in `t`. A contact without a name is reported and left
/// out; a bad email address is reported and dropped; blank fields are none.
pub fn read(t: &mut TableReader<'_, '_>, diags: &mut Vec<Diagnostic>) -> Vec<Contact> {
    let mut contacts = Vec::new();
    for mut c in t.tables("contacts", diags) {
        let name = c.required_string("name", "name = \"Simon Falk\"", diags);
        let role = c
            .string("role", diags)
            .map(|(r, _)| r)
            .filter(|r| !r.trim().is_empty());
        let phone = c
            .string("phone", diags)
            .map(|(p, _)| p)
            .filter(|p| !p.trim().is_empty());
        let email = c
            .string("email", diags)
            .filter(|(e, _)| !e.trim().is_empty());
        let email = email.and_then(|(e, span)| match e.parse::<lettre::Address>() {
            Ok(_) => Some(e),
            Err(err) => {
                diags.push(
                    c.error(span, format!("`{e}` is not an email address: {err}"))
                        .expected("an address like press@example.org"),
                );
                None
            }
        });
        let control = [&role, &phone, &email]
            .into_iter()
            .flatten()
            .chain(name.as_ref().map(|(n, _)| n))
            .any(|s| s.chars().any(|c| c.is_control() || !xml_char(c)));
        if control {
            diags.push(
                c.error(c.span(), "a contact field contains a line break")
                    .expected("one line per field"),
            );
        }
        c.finish(diags);
        if let Some((name, _)) = name {
            contacts.push(Contact {
                name,
                role,
                phone,
                email,
            });
        }
    }
    contacts
}

/// Whether XML 1.0 allows `c` (feeds and pages carry contacts).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{FFFD}' | '\u{10000}'..)
}
