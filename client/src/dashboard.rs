//! The deployer's HTTP pages as a client reads them: a `GET` through `http_request`, and
//! `/metrics` read by a Prometheus text parser into samples.

use std::collections::BTreeMap;

use candid::Principal;
use deployer::dashboard::{HttpRequest, HttpResponse};

use crate::{CallError, Deployer, Transport};

/// A sample's name and labels (sorted by name).
pub type SampleKey = (String, Vec<(String, String)>);

/// A `/metrics` scrape: every sample's value.
#[derive(Clone, Debug, PartialEq)]
pub struct Samples(pub BTreeMap<SampleKey, f64>);

impl Samples {
    /// Parses the Prometheus text format as `prometheus-parse` does (Prometheus' own rules).
    /// Panics on text it refuses, or on a histogram or summary (the deployer serves neither).
    pub fn parse(body: &[u8]) -> Samples {
        let text = std::str::from_utf8(body).expect("metrics are UTF-8");
        let lines = text.lines().map(|line| Ok(line.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("metrics parse");
        let samples = scrape.samples.into_iter().map(|sample| {
            let value = match sample.value {
                prometheus_parse::Value::Gauge(value)
                | prometheus_parse::Value::Counter(value)
                | prometheus_parse::Value::Untyped(value) => value,
                other => panic!("{} is not a single value: {other:?}", sample.metric),
            };
            let labels = sample
                .labels
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect();
            ((sample.metric, sort(labels)), value)
        });
        Samples(samples.collect())
    }

    /// The value of the sample `name` with exactly these labels, if served.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        self.0.get(&(name.to_string(), sort(labels))).copied()
    }

    /// As [`Samples::get`], for a sample that must be there.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {:#?}", self.0))
    }

    /// Every sample named `name`: its labels and value.
    pub fn named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = (&'a [(String, String)], f64)> + 'a {
        self.0
            .iter()
            .filter(move |((metric, _), _)| metric == name)
            .map(|((_, labels), value)| (labels.as_slice(), *value))
    }
}

fn sort(mut labels: Vec<(String, String)>) -> Vec<(String, String)> {
    labels.sort();
    labels
}

impl<E: Transport> Deployer<E> {
    /// `GET path` through `http_request`, as a gateway asks it (a query).
    pub fn http_get(
        &mut self,
        sender: Principal,
        path: &str,
    ) -> Result<HttpResponse<'static>, CallError> {
        self.http_request(sender, HttpRequest::get(path).build())
    }

    /// [`Deployer::http_get`], expected to be answered (with any status).
    #[track_caller]
    pub fn http_get_ok(&mut self, sender: Principal, path: &str) -> HttpResponse<'static> {
        self.http_request_ok(sender, HttpRequest::get(path).build())
    }

    /// `/metrics`, parsed; panics unless it is served with 200.
    #[track_caller]
    pub fn metrics_ok(&mut self, sender: Principal) -> Samples {
        let response = self.http_get_ok(sender, "/metrics");
        assert_eq!(response.status_code().as_u16(), 200, "GET /metrics");
        Samples::parse(response.body())
    }
}
