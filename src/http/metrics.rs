//! `/metrics` in Prometheus text format. Only counts, durations and times: no title, slug or
//! message of any kind, so nothing here can name an embargoed release.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, &'static str)>;

/// The daemon's metrics. The event loop and the send task update them; HTTP reads them.
/// Each metric is atomic, so no lock is held across either.
pub struct Metrics {
    registry: Registry,
    pub releases: Family<Labels, Gauge>,
    pub deliveries: Family<Labels, Gauge>,
    /// The daily digests by state, all periods together.
    pub digests: Family<Labels, Gauge>,
    pub builds: Counter,
    pub build_seconds: Histogram,
    pub send_seconds: Histogram,
    /// When the last error of each kind happened (Unix seconds); absent if none.
    pub last_error: Family<Labels, Gauge>,
    /// What the HTTP server's limits refused, by limit.
    pub refused: Family<Labels, Counter>,
    /// How often the folders are rescanned, by why (`watching_failed`,
    /// `network_file_system`, `configured`); 0 when not.
    pub rescan_interval: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pressroom");
        let releases = Family::<Labels, Gauge>::default();
        let deliveries = Family::<Labels, Gauge>::default();
        let digests = Family::<Labels, Gauge>::default();
        let builds = Counter::default();
        let build_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let send_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let last_error = Family::<Labels, Gauge>::default();
        let refused = Family::<Labels, Counter>::default();
        let rescan_interval = Family::<Labels, Gauge>::default();
        registry.register(
            "releases",
            "Releases by state (draft, embargoed, public, withdrawn; held: its file broke before it was public)",
            releases.clone(),
        );
        registry.register("deliveries", "Mail deliveries by state", deliveries.clone());
        registry.register("digests", "Daily digests by state", digests.clone());
        registry.register("builds", "Builds of the site", builds.clone());
        registry.register(
            "build_duration_seconds",
            "How long a build took",
            build_seconds.clone(),
        );
        registry.register(
            "send_duration_seconds",
            "How long a run of the mail sender took",
            send_seconds.clone(),
        );
        registry.register(
            "last_error_timestamp_seconds",
            "When the last error of each kind (build, config, mail, notify) happened",
            last_error.clone(),
        );
        registry.register(
            "http_refused",
            "What the HTTP server's limits refused: connections over one address's share \
             (peer_connections), requests over one client's (client_requests, answered 429), \
             connections shed while header bytes were over budget (header_budget)",
            refused.clone(),
        );
        registry.register(
            "rescan_interval_seconds",
            "How often the release and config folders are rescanned, by why: watching_failed, network_file_system (file events cannot be trusted there), configured ([watch] rescan); 0 when not",
            rescan_interval.clone(),
        );
        Metrics {
            registry,
            releases,
            deliveries,
            digests,
            builds,
            build_seconds,
            send_seconds,
            last_error,
            refused,
            rescan_interval,
        }
    }

    /// One more refusal by `limit`.
    pub fn refused(&self, limit: &'static str) {
        self.refused.get_or_create(&vec![("limit", limit)]).inc();
    }

    pub fn error(&self, kind: &'static str, at: chrono::DateTime<chrono::Utc>) {
        self.last_error
            .get_or_create(&vec![("kind", kind)])
            .set(at.timestamp());
    }

    /// OpenMetrics 1.0 text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// The classic Prometheus text format 0.0.4, for scrapers that do not ask for
    /// OpenMetrics. prometheus-client writes OpenMetrics only; the two differ, for what we
    /// register (counters, gauges, histograms), in three things: a counter's family is named
    /// with its `_total` suffix in 0.0.4 (else the classic parser reads an empty counter
    /// and an untyped `_total` sample), and there is no `# UNIT` and no `# EOF` line.
    pub fn render_classic(&self) -> String {
        let open = self.render();
        let counters: Vec<String> = open
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.strip_suffix(" counter"))
            .map(str::to_string)
            .collect();
        let mut out = String::with_capacity(open.len());
        for line in open.lines() {
            if line == "# EOF" || line.starts_with("# UNIT ") {
                continue;
            }
            let renamed = ["# TYPE ", "# HELP "].iter().find_map(|meta| {
                let rest = line.strip_prefix(meta)?;
                let (name, tail) = rest.split_once(' ')?;
                counters
                    .iter()
                    .any(|c| c == name)
                    .then(|| format!("{meta}{name}_total {tail}"))
            });
            out.push_str(renamed.as_deref().unwrap_or(line));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.releases.get_or_create(&vec![("state", "public")]).set(3);
        m.builds.inc();
        let text = m.render();
        assert!(
            text.contains("pressroom_releases{state=\"public\"} 3"),
            "{text}"
        );
        assert!(text.contains("pressroom_builds_total 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
        let classic = m.render_classic();
        assert!(
            classic.contains("# TYPE pressroom_builds_total counter\npressroom_builds_total 1"),
            "{classic}"
        );
        assert!(
            !classic.contains("# EOF") && !classic.contains("# UNIT"),
            "{classic}"
        );
    }
}
