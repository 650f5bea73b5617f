//! Topics as a press office writes them (`Miljö`, `Människohandel`): their pages live at
//! ASCII slugs, readers see the names, the media list takes them in any case and with or
//! without diacritics, and `check` refuses one topic written two ways.

use super::*;

/// The addresses the file transport wrote a message to.
fn outbox_recipients(p: &Project) -> Vec<String> {
    let dir = p.path().join("state/outbox");
    let mut to = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("an outbox") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("a message");
        let m = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("a message");
        let address = m
            .to()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .expect("To");
        to.push(address.to_string());
    }
    to.sort();
    to
}

#[test]
fn a_release_about_miljo_has_its_topic_page_and_reaches_every_row_that_takes_miljo() {
    let p = Project::empty();
    p.set_media(&[
        "anna.lind@example.org,Anna Lind,Dagbladet Exempel,sv,miljö",
        "bo.ek@example.com,Bo Ek,Radio Exempel,,MILJO|sport",
        "cecilia.berg@example.org,Cecilia Berg,Tidningen Exempel,,Miljö",
        "david.holm@example.com,David Holm,Example News,,sport",
        "eva.strand@example.org,Eva Strand,Exempelbyrån,,miljöer",
    ]);
    p.write(
        "releases/2019-03-01-havet.md",
        release(
            "title = \"Havet mår dåligt\"\ndate = 2019-03-01\ntopics = [\"Miljö\"]",
            "Fisken försvinner.",
        ),
    );
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let out = p.out();
    p.build_at("2019-03-02T12:00:00+01:00", &out);
    let all = files(&out);
    let page = text(&all, "topics/miljo/index.html");
    assert!(page.contains("<h1>Miljö</h1>"), "{page}");
    assert!(page.contains("Havet mår dåligt"), "{page}");
    let release_page = text(&all, "releases/havet/index.html");
    assert!(
        release_page.contains("<a href=\"http://127.0.0.1:8080/topics/miljo/\">Miljö</a>"),
        "{release_page}"
    );
    let index = text(&all, "index.html");
    assert!(
        index.contains("<a href=\"http://127.0.0.1:8080/topics/miljo/\">Miljö</a>"),
        "{index}"
    );
    for feed in ["feed.rss", "feed.atom", "feed.json"] {
        assert!(all.contains_key(&format!("topics/miljo/{feed}")), "{feed}");
    }
    assert!(
        text(&all, "topics/miljo/feed.rss").contains("<category>Miljö</category>"),
        "the RSS category is the name"
    );

    let o = p.run(&["send", "havet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        outbox_recipients(&p),
        [
            "anna.lind@example.org",
            "bo.ek@example.com",
            "cecilia.berg@example.org"
        ],
        "miljö, MILJO and Miljö take Miljö; sport and miljöer do not"
    );
}

#[test]
fn check_refuses_one_topic_written_two_ways_unless_the_config_names_it() {
    let p = Project::empty();
    p.write(
        "releases/a.md",
        release(
            "title = \"A\"\ndate = 2019-03-01\ntopics = [\"Miljö\"]",
            "Text.",
        ),
    );
    p.write(
        "releases/b.md",
        release(
            "title = \"B\"\ndate = 2019-03-02\ntopics = [\"Sport\", \"miljo\"]",
            "Text.",
        ),
    );
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    let a = p.path().join("releases/a.md");
    let b = p.path().join("releases/b.md");
    assert!(
        err.contains(&format!(
            "{}:4:20: the topic `miljo` is written `Miljö` in {}:4:11: one topic, `miljo`, under two names",
            b.display(),
            a.display()
        )),
        "{err}"
    );

    // Named in the config, it is one topic under that name, however releases write it.
    let config = p.path().join("config/pressroom.toml");
    let mut text_ = std::fs::read_to_string(&config).expect("config");
    text_.push_str("\n[topics.\"Miljö och klimat\"]\ndescription = \"Hav, luft och land.\"\n");
    std::fs::write(&config, &text_).expect("config");
    let o = p.run(&["check"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a different slug still: {}",
        stderr(&o)
    );
    std::fs::write(
        &config,
        text_.replace("[topics.\"Miljö och klimat\"]", "[topics.\"Miljö\"]"),
    )
    .expect("config");
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let out = p.out();
    p.build_at("2019-03-03T12:00:00+01:00", &out);
    let all = files(&out);
    let page = text(&all, "topics/miljo/index.html");
    assert!(page.contains("<h1>Miljö</h1>"), "{page}");
    assert!(
        page.contains("Hav, luft och land."),
        "the description: {page}"
    );
    let b_page = text(&all, "releases/b/index.html");
    assert!(b_page.contains("/topics/miljo/\">Miljö</a>"), "{b_page}");
}

#[test]
fn one_release_writing_one_topic_two_ways_is_refused_at_the_second() {
    let p = Project::empty();
    p.write(
        "releases/a.md",
        release(
            "title = \"A\"\ndate = 2019-03-01\ntopics = [\"Miljö\", \"Sport\", \"MILJÖ\", \"Miljö\"]",
            "Text.",
        ),
    );
    p.write(
        "releases/b.md",
        release(
            "title = \"B\"\ndate = 2019-03-01\ntopics = [\"?!\"]",
            "Text.",
        ),
    );
    let o = p.run(&["check"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "{}:4:29: the topics `Miljö` (line 4) and `MILJÖ` are one topic, `miljo`, written two ways (each topic once, written one way)",
            p.path().join("releases/a.md").display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:4:11: the topic name `?!` has no letter or digit to make its address of",
            p.path().join("releases/b.md").display()
        )),
        "{err}"
    );
}

#[test]
fn the_sample_shows_its_topics_by_name_in_the_configured_order_with_descriptions() {
    let p = Project::sample();
    let o = p.run(&["check"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = p.out();
    p.build_at("2018-10-20T12:00:00+02:00", &out);
    let all = files(&out);
    let index = text(&all, "index.html");
    let at = |name: &str| index.find(&format!(">{name}</a>")).expect(name);
    assert!(
        at("Prostitution") < at("Människohandel") && at("Människohandel") < at("Jämställdhet"),
        "the order of [topics]: {index}"
    );
    let page = text(&all, "topics/manniskohandel/index.html");
    assert!(page.contains("<h1>Människohandel</h1>"), "{page}");
    assert!(
        page.contains("Arbetet mot människohandel för sexuella ändamål."),
        "{page}"
    );
    let atom = text(&all, "feed.atom");
    assert!(
        atom.contains("term=\"manniskohandel\"") && atom.contains("label=\"Människohandel\""),
        "{atom}"
    );
}

#[test]
fn a_topic_written_anew_in_another_case_shows_so_on_the_next_build_of_a_running_builder() {
    let p = Project::empty();
    let file = p.write(
        "releases/havet.md",
        release(
            "title = \"Havet\"\ndate = 2019-03-01\ntopics = [\"miljo\"]",
            "Text.",
        ),
    );
    let (config, _) =
        pressroom::config::Config::load(Some(&p.path().join("config/pressroom.toml")))
            .expect("the config");
    let out = p.out();
    let mut builder = pressroom::build::Builder::new(config, out.clone());
    let at = "2019-03-02T00:00:00Z".parse().expect("an instant");
    builder.build(at).expect("a build");
    let page = || std::fs::read_to_string(out.join("releases/havet/index.html")).expect("page");
    assert!(page().contains("/topics/miljo/\">miljo</a>"), "{}", page());

    // As long as before, so only the new modification time tells the file changed.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .expect("file")
            .replace("\"miljo\"", "\"Miljo\""),
    )
    .expect("write");
    let later = std::fs::metadata(&file)
        .and_then(|m| m.modified())
        .expect("mtime")
        + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
    builder.build(at).expect("a build");
    assert!(page().contains("/topics/miljo/\">Miljo</a>"), "{}", page());
    let feed = std::fs::read_to_string(out.join("feed.rss")).expect("feed");
    assert!(feed.contains("<category>Miljo</category>"), "{feed}");
}
