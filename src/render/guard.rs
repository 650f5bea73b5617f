//! The net under the renderers: a panic while rendering one release is caught, and that
//! release is refused with an error naming its file while the rest of the site is built.
//! `check` refuses every value a renderer is known not to represent (a year outside
//! 1900–9999, a character XML cannot hold); this is for what nobody knows yet, so that one
//! release can never take a build, or the daemon running it, down.
//!
//! Catching is sound here because rendering only reads: the release, the config and the
//! templates are shared, never changed, and what a panicked render made is thrown away.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::{Failure, Map, Outputs, RenderError, Templates};
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::planner::Plan;
use crate::release::Release;

/// `work` (rendering `release`), or the error that refuses the release if it panicked.
pub fn catch<T>(release: &Release, work: impl FnOnce() -> T) -> Result<T, Diagnostic> {
    catch_unwind(AssertUnwindSafe(work)).map_err(|panic| refusal(release, &panic_message(&*panic)))
}

/// The error that refuses a release a renderer panicked on.
pub fn refusal(release: &Release, panic: &str) -> Diagnostic {
    Diagnostic::file(
        &release.source,
        format!(
            "pressroom could not render this release ({panic}), so it is left out of the site"
        ),
    )
    .expected("a release every renderer can write: this is a bug in pressroom, please report it with the file")
}

/// What a panic said, for the message that reports it.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// `render::listings`, with a panic caught. The releases that make one are found by
/// rendering each alone, and the listings are rendered again without them; each is
/// refused with an error naming its file. A panic that no single release explains is an
/// error for the whole build (the site stays as it was). Only a build that met a panic
/// pays for the search.
pub fn listings(
    config: &Config,
    templates: &Templates,
    plan: &Plan<'_>,
    cache: &mut Map<String, u64>,
    on_disk: &dyn Fn(&str) -> bool,
) -> Result<(Outputs, Vec<Diagnostic>), RenderError> {
    let attempt = |plan: &Plan<'_>, cache: &mut Map<String, u64>| {
        catch_unwind(AssertUnwindSafe(|| {
            super::listings(config, templates, plan, cache, on_disk)
        }))
    };
    let panic = match attempt(plan, cache) {
        Ok(rendered) => return rendered.map(|out| (out, Vec::new())),
        Err(panic) => panic_message(&*panic),
    };
    // The panicked run noted keys of listings it never wrote: none of them can be trusted.
    cache.clear();
    let mut refused = Vec::new();
    let mut keep = |r: &&Release| {
        let alone = Plan {
            at: plan.at,
            public: if r.withdrawn.is_none() {
                vec![*r]
            } else {
                Vec::new()
            },
            withdrawn: if r.withdrawn.is_some() {
                vec![*r]
            } else {
                Vec::new()
            },
        };
        match attempt(&alone, &mut Map::default()) {
            Ok(_) => true,
            Err(panic) => {
                refused.push(refusal(r, &panic_message(&*panic)));
                false
            }
        }
    };
    let rest = Plan {
        at: plan.at,
        public: plan.public.iter().copied().filter(&mut keep).collect(),
        withdrawn: plan.withdrawn.iter().copied().filter(&mut keep).collect(),
    };
    let failed = |panic: String| RenderError {
        template: "index.html",
        page: "the listings".to_string(),
        source: Failure::Panicked(panic),
    };
    if refused.is_empty() {
        return Err(failed(panic));
    }
    match attempt(&rest, cache) {
        Ok(rendered) => rendered.map(|out| (out, refused)),
        Err(panic) => {
            cache.clear();
            Err(failed(panic_message(&*panic)))
        }
    }
}
