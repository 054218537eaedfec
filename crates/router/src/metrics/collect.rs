//! Gauges read at scrape time: a closure returns the rows, and [`Gauges`]
//! renders them as one family per name (rows of one name must be adjacent and
//! share the help). Used for what lives elsewhere and is cheap to read when
//! `/metrics` is asked: store row counts, the live subscription count,
//! consumer lag.

use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType;

/// A label set: `[(key, value)]`.
pub type Labels = Vec<(&'static str, String)>;

/// One gauge value with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct GaugeRow {
    /// The metric name.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Its labels (empty for a plain gauge).
    pub labels: Labels,
    /// The value: whole numbers render without a fraction.
    pub value: GaugeValue,
}

/// A gauge's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GaugeValue {
    /// A count.
    Int(i64),
    /// A measure (seconds, ratios).
    Float(f64),
}

impl GaugeRow {
    /// A gauge without labels holding a count.
    pub fn plain(name: &'static str, help: &'static str, value: f64) -> GaugeRow {
        let value = if value.fract() == 0.0 && value.abs() < 9.0e15 {
            GaugeValue::Int(value as i64)
        } else {
            GaugeValue::Float(value)
        };
        GaugeRow {
            name,
            help,
            labels: Vec::new(),
            value,
        }
    }

    /// A labelled count.
    pub fn labelled(
        name: &'static str,
        help: &'static str,
        labels: Labels,
        value: i64,
    ) -> GaugeRow {
        GaugeRow {
            name,
            help,
            labels,
            value: GaugeValue::Int(value),
        }
    }
}

/// A collector of gauge rows produced by a closure at each scrape.
pub struct Gauges<F>(F);

impl<F> std::fmt::Debug for Gauges<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gauges")
    }
}

impl<F: Fn() -> Vec<GaugeRow> + Send + Sync + 'static> Gauges<F> {
    /// Rows from `read`, called at every scrape.
    pub fn new(read: F) -> Gauges<F> {
        Gauges(read)
    }
}

impl<F: Fn() -> Vec<GaugeRow> + Send + Sync + 'static> prometheus_client::collector::Collector
    for Gauges<F>
{
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = (self.0)();
        let mut i = 0;
        while i < rows.len() {
            let name = rows[i].name;
            let mut family =
                encoder.encode_descriptor(name, rows[i].help, None, MetricType::Gauge)?;
            while i < rows.len() && rows[i].name == name {
                let row = &rows[i];
                if row.labels.is_empty() {
                    encode_value(row.value, &mut family)?;
                } else {
                    let mut labelled = family.encode_family(&row.labels)?;
                    encode_value(row.value, &mut labelled)?;
                }
                i += 1;
            }
        }
        Ok(())
    }
}

fn encode_value(
    value: GaugeValue,
    encoder: &mut prometheus_client::encoding::MetricEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    match value {
        GaugeValue::Int(v) => encoder.encode_gauge(&v),
        GaugeValue::Float(v) => encoder.encode_gauge(&v),
    }
}
