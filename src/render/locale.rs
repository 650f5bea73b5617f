//! The words, dates and language names that pages and mail print, in the language of the
//! page: Swedish and English built in, English for any other language. An office changes
//! any word in `config/templates/strings.toml`, a table per language (`Strings`); dates
//! reach templates in parts as well (`view::DateView`) so an overridden template can write
//! its own.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use icu_locale::{LanguageIdentifier, LocaleExpander};
use serde::{Deserialize, Serialize};

use crate::diagnostic::Diagnostic;
use crate::release::LangTag;

/// The few words the built-in templates print, in one language.
#[derive(Clone, Serialize, Deserialize)]
pub struct Labels {
    /// The skip link, the first thing a keyboard or screen reader meets.
    pub skip: Text,
    pub releases: Text,
    pub latest: Text,
    pub archive: Text,
    pub topics: Text,
    pub topic: Text,
    pub language: Text,
    pub languages: Text,
    pub contacts: Text,
    pub attachments: Text,
    /// The release page's section of pictures and documents, and its pictures' heading.
    pub press_kit: Text,
    pub images: Text,
    pub published: Text,
    pub updated: Text,
    pub withdrawn: Text,
    pub subscribe: Text,
    pub feeds: Text,
    pub none: Text,
    pub phone: Text,
    pub email: Text,
    pub greeting: Text,
    pub greeting_anonymous: Text,
    pub correction: Text,
    pub update_subject: Text,
    pub read_online: Text,
    pub unsubscribe: Text,
    /// Paged archives: `Sida 2 av 5`, the links' names and the navigation's label.
    pub page: Text,
    pub page_of: Text,
    pub pages: Text,
    /// The mail's footer: why the reader gets it. `{whose}` is the organisation in the
    /// genitive (`Jämställdhetsmyndighetens`), `{topics}` the media list row's topics.
    pub why_topics: Text,
    /// The same for a row that takes every release.
    pub why_all: Text,
    /// The mail's footer: before the organisation and the From address.
    pub sent_by: Text,
    /// The digest's footer: why the reader gets it (`{organisation}` filled in). Its
    /// subject and heading are `releases` and the day (`Pressmeddelanden 5 december 2026`).
    pub digest_why: Text,
    /// Between the last two of a list (`Prostitution och Människohandel`).
    pub and: Text,
    /// The unsubscribe page's question; `{organisation}` and `{address}` (shown masked:
    /// `a…@example.org`) are filled in.
    pub unsubscribe_ask: Text,
    /// The page after unsubscribing: its heading and text (same placeholders).
    pub unsubscribed: Text,
    pub unsubscribed_text: Text,
    /// The question above the undo button, and the button.
    pub undo_ask: Text,
    pub undo: Text,
    /// The page after the undo: its heading and text (same placeholders).
    pub resubscribed: Text,
    pub resubscribed_text: Text,
    /// The link from these pages to the newsroom.
    pub back: Text,
    /// The page of a link that does not verify (cut short, mistyped): heading and text.
    pub invalid_link: Text,
    pub invalid_link_text: Text,
    /// The search form and its results page.
    pub search: Text,
    pub search_results: Text,
    pub hits: Text,
    pub no_results: Text,
    pub previous: Text,
    pub next: Text,
    /// The page every miss gets: its heading and text.
    pub not_found: Text,
    pub not_found_text: Text,
    /// The sign-up form (`_signup_form.html`): its heading, fields, the choices' legends
    /// and the honeypot's label (a field people never see; bots fill it).
    pub signup: Text,
    pub signup_email: Text,
    pub signup_name: Text,
    pub signup_outlet: Text,
    pub signup_topics: Text,
    pub signup_langs: Text,
    pub signup_delivery: Text,
    pub signup_each: Text,
    pub signup_digest: Text,
    pub signup_trap: Text,
    /// The one answer to every sign-up, whatever happens behind it.
    pub signup_sent: Text,
    pub signup_sent_text: Text,
    /// A form that cannot be read (no address, an unknown topic).
    pub signup_invalid: Text,
    pub signup_invalid_text: Text,
    /// The confirmation link's page (`{organisation}`), and the page after it
    /// (`{organisation}`, `{address}` masked).
    pub confirm: Text,
    pub confirm_ask: Text,
    pub subscribed: Text,
    pub subscribed_text: Text,
    /// A confirmation link used already or expired.
    pub confirm_invalid_text: Text,
    /// The confirmation mail: subject, text (`{organisation}`, `{address}`, `{hours}`) and
    /// the line for whoever did not ask for it.
    pub confirm_subject: Text,
    pub confirm_text: Text,
    pub confirm_ignore: Text,
    /// The preferences page (a mail's footer links to it): its heading (and the footer's
    /// link), the line under it (`{organisation}`, `{address}` masked), its fieldsets, the
    /// choices "every topic/language", the two deliveries, and the save button and its
    /// answer.
    pub preferences: Text,
    pub preferences_text: Text,
    /// Said when the choices shown are the press office's list's, not the reader's own.
    pub preferences_from_list: Text,
    pub all_topics: Text,
    pub all_languages: Text,
    pub delivery: Text,
    pub delivery_each: Text,
    pub delivery_digest: Text,
    pub save: Text,
    pub saved: Text,
    /// Pause and resume, and what a paused page says.
    pub pause: Text,
    pub resume: Text,
    pub paused_text: Text,
    /// An address that unsubscribed (or was erased): what the page says, its button, and
    /// the answer (a confirmation mail went to the address).
    pub opted_out_text: Text,
    pub subscribe_again: Text,
    pub confirm_sent: Text,
    /// Their data: the section, its two buttons, and the answers (a mail went to them).
    pub your_data: Text,
    pub send_data: Text,
    pub data_sent: Text,
    pub erase: Text,
    pub erase_sent: Text,
    /// The erase link's page (from that mail): the question, and the page after it.
    pub erase_ask: Text,
    pub erased: Text,
    pub erased_text: Text,
    #[serde(skip)]
    style: Style,
}

/// A word or phrase: the built-in ones are constants, an office's are read from a file.
type Text = Cow<'static, str>;

/// How a language writes a date and a time of day.
#[derive(Clone, Copy, Default)]
enum Style {
    /// `18 oktober 2018`, `18 oktober 2018 kl. 08.00`: Språkrådet's Svenska skrivregler
    /// write the time with a full stop (the colon is also accepted, but the stop is what
    /// Swedish authorities and newspapers print), and no zone: Swedish readers of a
    /// Swedish newsroom read Swedish time.
    Swedish,
    /// `18 October 2018`, `18 October 2018 at 08:00 CEST`: day-month-year as British and
    /// European English write it, with the zone, since an English reader may be anywhere.
    #[default]
    English,
}

const SV: Labels = Labels {
    skip: Cow::Borrowed("Till innehållet"),
    releases: Cow::Borrowed("Pressmeddelanden"),
    latest: Cow::Borrowed("Senaste pressmeddelanden"),
    archive: Cow::Borrowed("Arkiv"),
    topics: Cow::Borrowed("Ämnen"),
    topic: Cow::Borrowed("Ämne"),
    language: Cow::Borrowed("Språk"),
    languages: Cow::Borrowed("Pressmeddelanden på"),
    contacts: Cow::Borrowed("Presskontakt"),
    attachments: Cow::Borrowed("Dokument"),
    press_kit: Cow::Borrowed("Pressmaterial"),
    images: Cow::Borrowed("Bilder"),
    published: Cow::Borrowed("Publicerad"),
    updated: Cow::Borrowed("Uppdaterad"),
    withdrawn: Cow::Borrowed("Pressmeddelandet har dragits tillbaka"),
    subscribe: Cow::Borrowed("Prenumerera"),
    feeds: Cow::Borrowed("Flöden"),
    none: Cow::Borrowed("Inga pressmeddelanden ännu."),
    phone: Cow::Borrowed("Telefon"),
    email: Cow::Borrowed("E-post"),
    greeting: Cow::Borrowed("Hej"),
    greeting_anonymous: Cow::Borrowed("Hej!"),
    correction: Cow::Borrowed(
        "Rättelse: det här pressmeddelandet har uppdaterats sedan vi skickade det.",
    ),
    update_subject: Cow::Borrowed("Uppdaterat"),
    read_online: Cow::Borrowed("Läs pressmeddelandet på webben"),
    unsubscribe: Cow::Borrowed("Avsluta prenumerationen"),
    page: Cow::Borrowed("Sida"),
    page_of: Cow::Borrowed("av"),
    pages: Cow::Borrowed("Sidor"),
    why_topics: Cow::Borrowed(
        "Du får det här mejlet eftersom du finns på {whose} lista för presskontakter om {topics}.",
    ),
    why_all: Cow::Borrowed(
        "Du får det här mejlet eftersom du finns på {whose} lista för presskontakter och får alla pressmeddelanden.",
    ),
    sent_by: Cow::Borrowed("Skickat av"),
    and: Cow::Borrowed("och"),
    unsubscribe_ask: Cow::Borrowed(
        "Vill du sluta få pressmeddelanden från {organisation} till {address}?",
    ),
    unsubscribed: Cow::Borrowed("Prenumerationen är avslutad"),
    unsubscribed_text: Cow::Borrowed(
        "{address} får inga fler pressmeddelanden från {organisation}.",
    ),
    undo_ask: Cow::Borrowed("Blev det fel?"),
    undo: Cow::Borrowed("Ångra, jag vill fortsätta få pressmeddelanden"),
    resubscribed: Cow::Borrowed("Du får pressmeddelanden igen"),
    resubscribed_text: Cow::Borrowed("{address} får pressmeddelanden från {organisation} igen."),
    back: Cow::Borrowed("Till pressrummet"),
    invalid_link: Cow::Borrowed("Länken fungerar inte"),
    invalid_link_text: Cow::Borrowed(
        "Länken är ofullständig eller felaktig. Kopiera hela länken från mejlet, eller svara på mejlet så tar vi bort dig från listan.",
    ),
    search: Cow::Borrowed("Sök"),
    search_results: Cow::Borrowed("Sökresultat"),
    hits: Cow::Borrowed("träffar"),
    no_results: Cow::Borrowed("Inga pressmeddelanden matchar sökningen."),
    previous: Cow::Borrowed("Föregående"),
    next: Cow::Borrowed("Nästa"),
    not_found: Cow::Borrowed("Sidan finns inte"),
    not_found_text: Cow::Borrowed(
        "Sidan du söker finns inte här. Sök bland pressmeddelandena eller gå till startsidan.",
    ),
    signup: Cow::Borrowed("Få pressmeddelanden med e-post"),
    signup_email: Cow::Borrowed("E-postadress"),
    signup_name: Cow::Borrowed("Namn"),
    signup_outlet: Cow::Borrowed("Redaktion (valfritt)"),
    signup_topics: Cow::Borrowed("Ämnen (inget valt: alla)"),
    signup_langs: Cow::Borrowed("Språk (inget valt: alla)"),
    signup_delivery: Cow::Borrowed("Hur vill du få dem?"),
    signup_each: Cow::Borrowed("Varje pressmeddelande när det publiceras"),
    signup_digest: Cow::Borrowed("En sammanställning om dagen"),
    signup_trap: Cow::Borrowed("Lämna det här fältet tomt"),
    signup_sent: Cow::Borrowed("Titta i din inkorg"),
    signup_sent_text: Cow::Borrowed(
        "Om adressen kan prenumerera är en länk för att bekräfta på väg dit. Prenumerationen börjar först när du har öppnat den och bekräftat.",
    ),
    signup_invalid: Cow::Borrowed("Formuläret kunde inte skickas"),
    signup_invalid_text: Cow::Borrowed(
        "Fyll i en giltig e-postadress och välj bland formulärets ämnen och språk.",
    ),
    confirm: Cow::Borrowed("Bekräfta prenumerationen"),
    confirm_ask: Cow::Borrowed(
        "Tryck på knappen för att börja få pressmeddelanden från {organisation}.",
    ),
    subscribed: Cow::Borrowed("Du prenumererar nu"),
    subscribed_text: Cow::Borrowed(
        "{address} får pressmeddelanden från {organisation}. Varje mejl har en länk där du ändrar eller avslutar prenumerationen.",
    ),
    confirm_invalid_text: Cow::Borrowed(
        "Länken har redan använts eller gått ut. Anmäl dig igen i pressrummet om du vill prenumerera.",
    ),
    confirm_subject: Cow::Borrowed(
        "Bekräfta prenumerationen på pressmeddelanden från {organisation}",
    ),
    confirm_text: Cow::Borrowed(
        "Någon, förhoppningsvis du, har anmält {address} för att få pressmeddelanden från {organisation}. Öppna länken och bekräfta (den gäller i {hours} timmar):",
    ),
    confirm_ignore: Cow::Borrowed(
        "Var det inte du? Strunta då i det här mejlet: utan bekräftelse skickar vi ingenting mer till adressen.",
    ),
    preferences: Cow::Borrowed("Dina inställningar"),
    preferences_text: Cow::Borrowed("Välj vad {organisation} skickar till {address}."),
    preferences_from_list: Cow::Borrowed(
        "Valen nedan är pressavdelningens för dig. Sparar du egna val gäller dina.",
    ),
    all_topics: Cow::Borrowed("Alla ämnen"),
    all_languages: Cow::Borrowed("Alla språk"),
    delivery: Cow::Borrowed("Hur vill du få pressmeddelanden?"),
    delivery_each: Cow::Borrowed("Varje pressmeddelande när det publiceras"),
    delivery_digest: Cow::Borrowed("En sammanfattning om dagen"),
    save: Cow::Borrowed("Spara mina val"),
    saved: Cow::Borrowed("Dina val är sparade."),
    pause: Cow::Borrowed("Pausa utskicken"),
    resume: Cow::Borrowed("Fortsätt skicka till mig"),
    paused_text: Cow::Borrowed("Utskicken till {address} är pausade."),
    opted_out_text: Cow::Borrowed("{address} får inga pressmeddelanden från {organisation}."),
    subscribe_again: Cow::Borrowed("Prenumerera igen"),
    confirm_sent: Cow::Borrowed(
        "Vi har skickat ett mejl till {address}. Följ länken i det för att bekräfta.",
    ),
    your_data: Cow::Borrowed("Dina uppgifter"),
    send_data: Cow::Borrowed("Mejla mig mina uppgifter"),
    data_sent: Cow::Borrowed("Vi har mejlat allt vi har om {address} till den adressen."),
    erase: Cow::Borrowed("Radera mina uppgifter"),
    erase_sent: Cow::Borrowed(
        "Vi har skickat ett mejl till {address}. Följ länken i det för att radera dina uppgifter.",
    ),
    erase_ask: Cow::Borrowed(
        "Vill du att {organisation} raderar allt om {address}? Du får inga fler pressmeddelanden.",
    ),
    erased: Cow::Borrowed("Dina uppgifter är raderade"),
    erased_text: Cow::Borrowed(
        "{organisation} har raderat allt om {address} och skickar inget mer dit.",
    ),
    digest_why: Cow::Borrowed(
        "Du får den här sammanställningen eftersom du prenumererar på pressmeddelanden från {organisation}.",
    ),
    style: Style::Swedish,
};

const EN: Labels = Labels {
    skip: Cow::Borrowed("Skip to content"),
    releases: Cow::Borrowed("Press releases"),
    latest: Cow::Borrowed("Latest press releases"),
    archive: Cow::Borrowed("Archive"),
    topics: Cow::Borrowed("Topics"),
    topic: Cow::Borrowed("Topic"),
    language: Cow::Borrowed("Language"),
    languages: Cow::Borrowed("Press releases in"),
    contacts: Cow::Borrowed("Press contact"),
    attachments: Cow::Borrowed("Documents"),
    press_kit: Cow::Borrowed("Press kit"),
    images: Cow::Borrowed("Images"),
    published: Cow::Borrowed("Published"),
    updated: Cow::Borrowed("Updated"),
    withdrawn: Cow::Borrowed("This press release has been withdrawn"),
    subscribe: Cow::Borrowed("Subscribe"),
    feeds: Cow::Borrowed("Feeds"),
    none: Cow::Borrowed("No press releases yet."),
    phone: Cow::Borrowed("Phone"),
    email: Cow::Borrowed("Email"),
    greeting: Cow::Borrowed("Dear"),
    greeting_anonymous: Cow::Borrowed("Hello,"),
    correction: Cow::Borrowed("Correction: this press release has been updated since we sent it."),
    update_subject: Cow::Borrowed("Updated"),
    read_online: Cow::Borrowed("Read the press release online"),
    unsubscribe: Cow::Borrowed("Unsubscribe"),
    page: Cow::Borrowed("Page"),
    page_of: Cow::Borrowed("of"),
    pages: Cow::Borrowed("Pages"),
    why_topics: Cow::Borrowed(
        "You are receiving this email because you are on {whose} list of press contacts for {topics}.",
    ),
    why_all: Cow::Borrowed(
        "You are receiving this email because you are on {whose} list of press contacts for all press releases.",
    ),
    sent_by: Cow::Borrowed("Sent by"),
    and: Cow::Borrowed("and"),
    unsubscribe_ask: Cow::Borrowed(
        "Do you want to stop receiving press releases from {organisation} at {address}?",
    ),
    unsubscribed: Cow::Borrowed("You have unsubscribed"),
    unsubscribed_text: Cow::Borrowed(
        "{address} will receive no more press releases from {organisation}.",
    ),
    undo_ask: Cow::Borrowed("Was that a mistake?"),
    undo: Cow::Borrowed("Undo, keep sending me press releases"),
    resubscribed: Cow::Borrowed("You are subscribed again"),
    resubscribed_text: Cow::Borrowed(
        "{address} will receive press releases from {organisation} again.",
    ),
    back: Cow::Borrowed("Back to the newsroom"),
    invalid_link: Cow::Borrowed("This link does not work"),
    invalid_link_text: Cow::Borrowed(
        "The link is incomplete or mistyped. Copy the whole link from the email, or reply to the email and we will take you off the list.",
    ),
    search: Cow::Borrowed("Search"),
    search_results: Cow::Borrowed("Search results"),
    hits: Cow::Borrowed("results"),
    no_results: Cow::Borrowed("No press releases match the search."),
    previous: Cow::Borrowed("Previous"),
    next: Cow::Borrowed("Next"),
    not_found: Cow::Borrowed("Page not found"),
    not_found_text: Cow::Borrowed(
        "The page you are looking for is not here. Search the press releases or go to the front page.",
    ),
    signup: Cow::Borrowed("Get press releases by email"),
    signup_email: Cow::Borrowed("Email address"),
    signup_name: Cow::Borrowed("Name"),
    signup_outlet: Cow::Borrowed("Outlet (optional)"),
    signup_topics: Cow::Borrowed("Topics (none ticked: all)"),
    signup_langs: Cow::Borrowed("Languages (none ticked: all)"),
    signup_delivery: Cow::Borrowed("How would you like them?"),
    signup_each: Cow::Borrowed("Each press release as it is published"),
    signup_digest: Cow::Borrowed("A daily digest"),
    signup_trap: Cow::Borrowed("Leave this field empty"),
    signup_sent: Cow::Borrowed("Check your inbox"),
    signup_sent_text: Cow::Borrowed(
        "If the address can be subscribed, a confirmation link is on its way. The subscription starts only once you have opened it and confirmed.",
    ),
    signup_invalid: Cow::Borrowed("The form could not be sent"),
    signup_invalid_text: Cow::Borrowed(
        "Enter a valid email address and choose among the form's topics and languages.",
    ),
    confirm: Cow::Borrowed("Confirm your subscription"),
    confirm_ask: Cow::Borrowed(
        "Press the button to start receiving press releases from {organisation}.",
    ),
    subscribed: Cow::Borrowed("You are subscribed"),
    subscribed_text: Cow::Borrowed(
        "{address} will receive press releases from {organisation}. Every email has a link to change or end the subscription.",
    ),
    confirm_invalid_text: Cow::Borrowed(
        "The link has been used already or has expired. Sign up again on the newsroom to subscribe.",
    ),
    confirm_subject: Cow::Borrowed(
        "Confirm your subscription to press releases from {organisation}",
    ),
    confirm_text: Cow::Borrowed(
        "Someone, hopefully you, asked for press releases from {organisation} to be sent to {address}. Open the link to confirm (it works for {hours} hours):",
    ),
    confirm_ignore: Cow::Borrowed(
        "Wasn't you? Then ignore this email: without a confirmation we send nothing more to the address.",
    ),
    preferences: Cow::Borrowed("Your preferences"),
    preferences_text: Cow::Borrowed("Choose what {organisation} sends to {address}."),
    preferences_from_list: Cow::Borrowed(
        "These are the press office's choices for you. Save your own and yours apply.",
    ),
    all_topics: Cow::Borrowed("All topics"),
    all_languages: Cow::Borrowed("All languages"),
    delivery: Cow::Borrowed("How do you want press releases?"),
    delivery_each: Cow::Borrowed("Each press release as it is published"),
    delivery_digest: Cow::Borrowed("A daily digest"),
    save: Cow::Borrowed("Save my choices"),
    saved: Cow::Borrowed("Your choices are saved."),
    pause: Cow::Borrowed("Pause mail"),
    resume: Cow::Borrowed("Resume mail"),
    paused_text: Cow::Borrowed("Mail to {address} is paused."),
    opted_out_text: Cow::Borrowed("{address} receives no press releases from {organisation}."),
    subscribe_again: Cow::Borrowed("Subscribe again"),
    confirm_sent: Cow::Borrowed("We have sent an email to {address}. Follow its link to confirm."),
    your_data: Cow::Borrowed("Your data"),
    send_data: Cow::Borrowed("Email me my data"),
    data_sent: Cow::Borrowed("We have emailed everything we hold about {address} to that address."),
    erase: Cow::Borrowed("Delete my data"),
    erase_sent: Cow::Borrowed(
        "We have sent an email to {address}. Follow its link to delete your data.",
    ),
    erase_ask: Cow::Borrowed(
        "Do you want {organisation} to delete everything about {address}? You will receive no more press releases.",
    ),
    erased: Cow::Borrowed("Your data is deleted"),
    erased_text: Cow::Borrowed(
        "{organisation} has deleted everything about {address} and sends nothing more there.",
    ),
    digest_why: Cow::Borrowed(
        "You get this digest because you subscribed to press releases from {organisation}.",
    ),
    style: Style::English,
};

const SV_MONTHS: [&str; 12] = [
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
];

const EN_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl Labels {
    pub fn for_lang(lang: &LangTag) -> &'static Labels {
        match lang.language().as_str() {
            "sv" => &SV,
            _ => &EN,
        }
    }

    /// The month's name (`month0`: 0 for January).
    pub fn month(&self, month0: u32) -> &'static str {
        let names = match self.style {
            Style::Swedish => &SV_MONTHS,
            Style::English => &EN_MONTHS,
        };
        names[month0 as usize % 12]
    }

    /// `18 oktober 2018`.
    pub fn day(&self, local: &DateTime<Tz>) -> String {
        format!(
            "{} {} {}",
            local.day(),
            self.month(local.month0()),
            local.year()
        )
    }

    /// A file's size as file managers show it (SI units), with the language's decimal mark:
    /// `2,4 MB` in Swedish, `2.4 MB` in English; `340 kB`, `512 B`.
    pub fn size(&self, len: u64) -> String {
        let size = crate::render::view::human_size(len);
        match self.style {
            Style::Swedish => size.replace('.', ","),
            Style::English => size,
        }
    }

    /// A picture's size in pixels: `3000 × 2000 px`.
    pub fn pixels(&self, width: u32, height: u32) -> String {
        format!("{width} × {height} px")
    }

    /// What kind of document a file is, in words a reader knows (`PDF`, `Word-dokument`),
    /// from its media type; an unknown type is named by the file's extension.
    pub fn file_kind(&self, mime: &str, name: &str) -> String {
        let sv = matches!(self.style, Style::Swedish);
        let word = |sv_word: &'static str, en_word: &'static str| {
            if sv { sv_word } else { en_word }.to_string()
        };
        let essence = mime.split(';').next().unwrap_or_default().trim();
        match essence {
            "application/pdf" => "PDF".into(),
            "application/msword"
            | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
            | "application/rtf" => word("Word-dokument", "Word document"),
            "application/vnd.ms-excel"
            | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "Excel".into(),
            "application/vnd.ms-powerpoint"
            | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
                "PowerPoint".into()
            }
            "application/vnd.oasis.opendocument.text" => {
                word("OpenDocument-text", "OpenDocument text")
            }
            "application/vnd.oasis.opendocument.spreadsheet" => {
                word("OpenDocument-kalkylblad", "OpenDocument spreadsheet")
            }
            "application/vnd.oasis.opendocument.presentation" => {
                word("OpenDocument-presentation", "OpenDocument presentation")
            }
            "text/csv" => "CSV".into(),
            "text/plain" => word("Textfil", "Text file"),
            "application/zip" => word("ZIP-arkiv", "ZIP archive"),
            m if m.starts_with("audio/") => word("Ljudfil", "Audio"),
            m if m.starts_with("video/") => "Video".into(),
            m if m.starts_with("image/") => word("Bild", "Image"),
            _ => match name.rsplit_once('.') {
                Some((_, ext)) if !ext.is_empty() => ext.to_uppercase(),
                _ => word("Fil", "File"),
            },
        }
    }

    /// The time of day: `08.00` in Swedish, `08:00` in English.
    pub fn time(&self, local: &DateTime<Tz>) -> String {
        let separator = match self.style {
            Style::Swedish => '.',
            Style::English => ':',
        };
        format!("{:02}{separator}{:02}", local.hour(), local.minute())
    }

    /// A day, with its time of day when `timed`: what a person reads.
    pub fn date(&self, local: &DateTime<Tz>, timed: bool) -> String {
        let day = self.day(local);
        if !timed {
            return day;
        }
        let time = self.time(local);
        match self.style {
            Style::Swedish => format!("{day} kl. {time}"),
            Style::English => format!("{day} at {time} {}", local.format("%Z")),
        }
    }

    /// `name` owning something: `Jämställdhetsmyndighetens` (Swedish adds no `s` after
    /// s, x or z), `the Agency's` (English adds `'` after s).
    pub fn genitive(&self, name: &str) -> String {
        let last = name.chars().last().map(|c| c.to_lowercase().to_string());
        match (self.style, last.as_deref()) {
            (Style::Swedish, Some("s" | "x" | "z")) => name.to_string(),
            (Style::Swedish, _) => format!("{name}s"),
            (Style::English, Some("s")) => format!("{name}'"),
            (Style::English, _) => format!("{name}'s"),
        }
    }

    /// `a`, `a och b`, `a, b och c`.
    pub fn list(&self, items: &[&str]) -> String {
        match items {
            [] => String::new(),
            [one] => (*one).to_string(),
            [init @ .., last] => format!("{} {} {last}", init.join(", "), self.and),
        }
    }

    /// Why a reader of the media list gets a mail: their row's topics (names as readers
    /// see them), or every release when the row names none.
    pub fn why(&self, organisation: &str, topics: &[&str]) -> String {
        let whose = self.genitive(organisation);
        if topics.is_empty() {
            self.why_all.replace("{whose}", &whose)
        } else {
            self.why_topics
                .replace("{whose}", &whose)
                .replace("{topics}", &self.list(topics))
        }
    }

    /// A language's name in this one (`svenska`, `Swedish`); the tag itself for a language
    /// the table does not hold.
    pub fn language_name(&self, tag: &LangTag) -> String {
        let language = tag.language();
        let found = LANGUAGES
            .iter()
            .find(|(code, ..)| *code == language)
            .map(|&(_, sv, en)| match self.style {
                Style::Swedish => sv,
                Style::English => en,
            });
        found.map_or_else(|| tag.as_str().to_string(), str::to_string)
    }
}

/// The office's words over the built-in ones: `config/templates/strings.toml`, a table per
/// language whose keys are `Labels`' fields:
///
/// ```toml
/// [sv]
/// skip = "Hoppa till innehållet"
/// contacts = "Kontakt"
/// ```
///
/// A language without built-in words (`[fi]`) starts from the English ones.
#[derive(Default, Clone)]
pub struct Strings {
    /// By language (`sv`), the built-in words with the office's over them.
    by_language: BTreeMap<String, Labels>,
}

/// The file's name in the templates folder.
pub const STRINGS_FILE: &str = "strings.toml";

impl Strings {
    /// Reads `dir/strings.toml` if there is one. Problems are reported and the words they
    /// concern stay built-in, so the site still builds.
    pub fn load(dir: &Path) -> (Strings, Vec<Diagnostic>) {
        let path = dir.join(STRINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Strings::parse(&text, &path),
            Err(_) => (Strings::default(), Vec::new()),
        }
    }

    /// `path` names the file in messages.
    pub fn parse(text: &str, path: &Path) -> (Strings, Vec<Diagnostic>) {
        let mut diags = Vec::new();
        let mut strings = Strings::default();
        let expected = "a table per language, like [sv], of words: skip = \"Till innehållet\"";
        let tables: BTreeMap<String, toml::Table> = match toml::from_str(text) {
            Ok(tables) => tables,
            Err(e) => {
                let mut d = Diagnostic::file(path, e.message().to_string()).expected(expected);
                if let Some(span) = e.span() {
                    d.line = text[..span.start].matches('\n').count() + 1;
                }
                diags.push(d);
                return (strings, diags);
            }
        };
        for (language, words) in tables {
            let Ok(tag) = LangTag::parse(&language) else {
                diags.push(
                    Diagnostic::file(path, format!("[{language}] is not a language"))
                        .expected("a language tag like sv or en"),
                );
                continue;
            };
            let base = Labels::for_lang(&tag);
            let Ok(serde_json::Value::Object(mut merged)) = serde_json::to_value(base) else {
                continue;
            };
            for (key, word) in words {
                match (merged.get_mut(&key), word) {
                    (Some(slot), toml::Value::String(word)) => {
                        *slot = serde_json::Value::String(word);
                    }
                    (Some(_), _) => diags.push(
                        Diagnostic::file(path, format!("[{language}] {key} is not a string"))
                            .expected("words in quotes"),
                    ),
                    (None, _) => diags.push(
                        Diagnostic::file(
                            path,
                            format!("[{language}] {key} is not a word pages print"),
                        )
                        .expected(format!(
                            "one of {}",
                            merged.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    ),
                }
            }
            if let Ok(mut labels) = serde_json::from_value::<Labels>(merged.into()) {
                labels.style = base.style;
                strings.by_language.insert(tag.language(), labels);
            }
        }
        (strings, diags)
    }

    /// The words for a page in `lang`.
    pub fn labels(&self, lang: &LangTag) -> &Labels {
        self.by_language
            .get(&lang.language())
            .unwrap_or_else(|| Labels::for_lang(lang))
    }
}

/// Names of the languages a Swedish or European press office is likely to publish in:
/// Sweden's official and minority languages, its neighbours', the EU's largest and the
/// most spoken languages among Sweden's residents (ISO 639 code, Swedish, English).
const LANGUAGES: &[(&str, &str, &str)] = &[
    ("sv", "svenska", "Swedish"),
    ("en", "engelska", "English"),
    ("fi", "finska", "Finnish"),
    ("fit", "meänkieli", "Meänkieli"),
    ("se", "nordsamiska", "Northern Sami"),
    ("smj", "lulesamiska", "Lule Sami"),
    ("sma", "sydsamiska", "Southern Sami"),
    ("yi", "jiddisch", "Yiddish"),
    ("rom", "romani", "Romani"),
    ("no", "norska", "Norwegian"),
    ("nb", "norska (bokmål)", "Norwegian Bokmål"),
    ("nn", "nynorska", "Norwegian Nynorsk"),
    ("da", "danska", "Danish"),
    ("is", "isländska", "Icelandic"),
    ("de", "tyska", "German"),
    ("fr", "franska", "French"),
    ("es", "spanska", "Spanish"),
    ("it", "italienska", "Italian"),
    ("pt", "portugisiska", "Portuguese"),
    ("nl", "nederländska", "Dutch"),
    ("pl", "polska", "Polish"),
    ("et", "estniska", "Estonian"),
    ("lv", "lettiska", "Latvian"),
    ("lt", "litauiska", "Lithuanian"),
    ("ru", "ryska", "Russian"),
    ("uk", "ukrainska", "Ukrainian"),
    ("ar", "arabiska", "Arabic"),
    ("fa", "persiska", "Persian"),
    ("prs", "dari", "Dari"),
    ("so", "somaliska", "Somali"),
    ("ti", "tigrinska", "Tigrinya"),
    ("tr", "turkiska", "Turkish"),
    ("ku", "kurdiska", "Kurdish"),
    ("bs", "bosniska", "Bosnian"),
    ("hr", "kroatiska", "Croatian"),
    ("sr", "serbiska", "Serbian"),
    ("zh", "kinesiska", "Chinese"),
    ("th", "thailändska", "Thai"),
];

/// Open Graph's `language_TERRITORY` (`sv_SE`): the tag's own region, else where CLDR's
/// likely subtags place the language (`sv` → `sv_SE`, `en` → `en_US`).
pub fn og_locale(tag: &LangTag) -> String {
    let language = tag.language();
    let region = tag
        .key()
        .split('-')
        .skip(1)
        .find(|part| part.len() == 2 && part.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_uppercase)
        .or_else(|| {
            let mut id: LanguageIdentifier = language.parse().ok()?;
            LocaleExpander::new_extended().maximize(&mut id);
            id.region.map(|r| r.as_str().to_string())
        });
    match region {
        Some(region) => format!("{language}_{region}"),
        None => language,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono_tz::Europe::Stockholm;

    fn tag(s: &str) -> LangTag {
        LangTag::parse(s).unwrap()
    }

    #[test]
    fn dates_read_as_people_write_them() {
        let morning = Stockholm.with_ymd_and_hms(2018, 10, 18, 8, 0, 0).unwrap();
        let sv = Labels::for_lang(&tag("sv-SE"));
        assert_eq!(sv.date(&morning, false), "18 oktober 2018");
        assert_eq!(sv.date(&morning, true), "18 oktober 2018 kl. 08.00");
        let en = Labels::for_lang(&tag("en"));
        assert_eq!(en.date(&morning, false), "18 October 2018");
        assert_eq!(en.date(&morning, true), "18 October 2018 at 08:00 CEST");
        let winter = Stockholm.with_ymd_and_hms(2019, 1, 5, 17, 45, 0).unwrap();
        assert_eq!(sv.date(&winter, true), "5 januari 2019 kl. 17.45");
        assert_eq!(en.date(&winter, true), "5 January 2019 at 17:45 CET");
    }

    #[test]
    fn languages_have_names_and_unknown_ones_keep_their_tag() {
        let sv = Labels::for_lang(&tag("sv"));
        assert_eq!(sv.language_name(&tag("sv")), "svenska");
        assert_eq!(sv.language_name(&tag("en-GB")), "engelska");
        assert_eq!(
            Labels::for_lang(&tag("de")).language_name(&tag("sv")),
            "Swedish"
        );
        assert_eq!(sv.language_name(&tag("haw")), "haw");
    }

    #[test]
    fn an_office_changes_words_per_language_and_a_wrong_key_is_reported() {
        let text = "[sv]\nskip = \"Hoppa till innehållet\"\ncontcts = \"Kontakt\"\n[fi]\nskip = \"Siirry sisältöön\"\n";
        let (strings, diags) = Strings::parse(text, Path::new("config/templates/strings.toml"));
        assert_eq!(strings.labels(&tag("sv-SE")).skip, "Hoppa till innehållet");
        assert_eq!(strings.labels(&tag("sv")).contacts, "Presskontakt");
        assert_eq!(strings.labels(&tag("fi")).skip, "Siirry sisältöön");
        assert_eq!(strings.labels(&tag("fi")).contacts, "Press contact");
        assert_eq!(strings.labels(&tag("en")).skip, "Skip to content");
        // The Swedish style of dates stays with the Swedish words.
        let day = Stockholm.with_ymd_and_hms(2018, 10, 18, 0, 0, 0).unwrap();
        assert_eq!(
            strings.labels(&tag("sv")).date(&day, false),
            "18 oktober 2018"
        );
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].message.contains("contcts"), "{}", diags[0].message);
    }

    #[test]
    fn a_mail_says_why_in_each_language() {
        let sv = Labels::for_lang(&tag("sv"));
        assert_eq!(
            sv.why("Jämställdhetsmyndigheten", &["Människohandel"]),
            "Du får det här mejlet eftersom du finns på Jämställdhetsmyndighetens lista för presskontakter om Människohandel."
        );
        assert_eq!(
            sv.why(
                "Länsstyrelsen Skåne",
                &["Prostitution", "Människohandel", "Jämställdhet"]
            ),
            "Du får det här mejlet eftersom du finns på Länsstyrelsen Skånes lista för presskontakter om Prostitution, Människohandel och Jämställdhet."
        );
        assert_eq!(
            sv.genitive("Skatteverkets pressgrupp Malmös"),
            "Skatteverkets pressgrupp Malmös"
        );
        let en = Labels::for_lang(&tag("en"));
        assert_eq!(
            en.why("the Gender Equality Agency", &[]),
            "You are receiving this email because you are on the Gender Equality Agency's list of press contacts for all press releases."
        );
        assert_eq!(
            en.genitive("Statistics Sweden Press Services"),
            "Statistics Sweden Press Services'"
        );
    }

    #[test]
    fn open_graph_locales_have_a_territory() {
        assert_eq!(og_locale(&tag("sv")), "sv_SE");
        assert_eq!(og_locale(&tag("en-GB")), "en_GB");
        assert_eq!(og_locale(&tag("se")), "se_NO");
    }
}
