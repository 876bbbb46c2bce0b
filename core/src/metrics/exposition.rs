//! The Prometheus text format (version 0.0.4), written by hand as crates.md §7 decides: metric
//! families with `# HELP` and `# TYPE`, samples grouped under their family, label values
//! escaped (`\` → `\\`, `"` → `\"`, newline → `\n`), numbers in a form every parser reads.

use std::fmt::Write as _;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (name ends in `_total`).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Buckets, sum and count.
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// Escapes a label value for the text format.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes `# HELP` text (backslash and newline only, as the format says).
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A sample value as the text format writes it (`+Inf`, `-Inf`, `NaN` spelled its way).
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// `{a="x",b="y"}` (nothing for no labels), values escaped.
pub fn format_labels(labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label_value(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Builds one exposition; families are written whole, in the order they are added.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes a family's `# HELP` and `# TYPE` lines and its samples; a family without samples
    /// is left out (a scraper learns nothing from it).
    pub fn family(&mut self, name: &str, kind: Kind, help: &str, samples: &[Sample]) {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {}", kind.as_str());
        for s in samples {
            let labels: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let _ = writeln!(
                self.text,
                "{name}{}{} {}",
                s.suffix,
                format_labels(&labels),
                format_value(s.value)
            );
        }
    }

    /// The text.
    pub fn finish(self) -> String {
        self.text
    }
}

/// One sample of a family: an optional name suffix (`_bucket`, `_sum`, `_count`), labels and
/// a value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Appended to the family name (histograms), usually empty.
    pub suffix: &'static str,
    /// Label names and values (unescaped).
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample with these labels.
    pub fn new(labels: &[(&str, &str)], value: f64) -> Self {
        Self {
            suffix: "",
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_backslash_quote_and_newline() {
        assert_eq!(escape_label_value(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label_value("x\ny"), "x\\ny");
        assert_eq!(
            format_labels(&[("host", "m\"1"), ("t", "")]),
            r#"{host="m\"1",t=""}"#
        );
    }

    #[test]
    fn values_are_parseable() {
        assert_eq!(format_value(0.0), "0");
        assert_eq!(format_value(2.5), "2.5");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(1e21), "1000000000000000000000");
    }

    #[test]
    fn empty_families_are_left_out() {
        let mut e = Exposition::new();
        e.family("a_total", Kind::Counter, "none", &[]);
        e.family("b", Kind::Gauge, "one\nline", &[Sample::new(&[], 1.0)]);
        assert_eq!(e.finish(), "# HELP b one\\nline\n# TYPE b gauge\nb 1\n");
    }
}
