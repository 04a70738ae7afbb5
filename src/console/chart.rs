//! Charts drawn on the server as inline SVG: no script, no outside file. Each chart is a
//! `<figure>` with a caption, an SVG (`role="img"`, titled) and the same numbers as a table
//! for screen readers (visually hidden). Colours come from the style sheet's classes.

use std::fmt::Write as _;

/// Drawing size (the SVG scales to its box).
const W: f64 = 720.0;
const H: f64 = 240.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

/// One bar: its label (x axis), value, and whether it is a forecast (drawn lighter).
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub forecast: bool,
}

/// One line: its name (legend) and a value per x label.
#[derive(Debug, Clone)]
pub struct Line {
    pub name: String,
    pub values: Vec<f64>,
}

/// A bar chart. At most ~12 x labels are printed (evenly spaced); every value is in the
/// table.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let max = nice_max(bars.iter().map(|b| b.value));
    let n = bars.len().max(1) as f64;
    let slot = (W - LEFT - 8.0) / n;
    let mut svg = open_svg(title);
    axes(&mut svg, max);
    let every = label_step(bars.len());
    for (i, b) in bars.iter().enumerate() {
        let h = scale(b.value, max);
        let x = LEFT + i as f64 * slot + slot * 0.1;
        let class = if b.forecast { "bar forecast" } else { "bar" };
        let _ = write!(
            svg,
            "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {}</title></rect>",
            H - BOTTOM - h,
            (slot * 0.8).max(1.0),
            escape(&b.label),
            number(b.value)
        );
        if i % every == 0 {
            x_label(&mut svg, x + slot * 0.4, &b.label);
        }
    }
    if bars.iter().any(|b| b.forecast) {
        let _ = write!(
            svg,
            "<g class=\"legend\"><rect class=\"s0\" x=\"{}\" y=\"2\" width=\"10\" height=\"10\"/><text x=\"{}\" y=\"11\">actual</text>\
             <rect class=\"forecast\" x=\"{}\" y=\"2\" width=\"10\" height=\"10\"/><text x=\"{}\" y=\"11\">forecast</text></g>",
            W - 170.0,
            W - 156.0,
            W - 90.0,
            W - 76.0
        );
    }
    svg.push_str("</svg>");
    let rows: Vec<Vec<String>> = bars
        .iter()
        .map(|b| {
            let mut label = b.label.clone();
            if b.forecast {
                label.push_str(" (forecast)");
            }
            vec![label, number(b.value)]
        })
        .collect();
    figure(title, &svg, &["", "value"], &rows)
}

/// A line chart: one polyline per series over the same x labels.
pub fn lines(title: &str, x_labels: &[String], lines: &[Line]) -> String {
    let max = nice_max(lines.iter().flat_map(|l| l.values.iter().copied()));
    let n = x_labels.len().max(2) as f64 - 1.0;
    let step = (W - LEFT - 16.0) / n;
    let mut svg = open_svg(title);
    axes(&mut svg, max);
    let every = label_step(x_labels.len());
    for (i, label) in x_labels.iter().enumerate() {
        if i % every == 0 {
            x_label(&mut svg, LEFT + i as f64 * step, label);
        }
    }
    for (s, line) in lines.iter().enumerate() {
        let points: Vec<String> = line
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + i as f64 * step,
                    H - BOTTOM - scale(*v, max)
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline class=\"line s{s}\" points=\"{}\"><title>{}</title></polyline>\
             <g class=\"legend\"><rect class=\"s{s}\" x=\"{:.1}\" y=\"2\" width=\"10\" height=\"10\"/><text x=\"{:.1}\" y=\"11\">{}</text></g>",
            points.join(" "),
            escape(&line.name),
            LEFT + 8.0 + s as f64 * 150.0,
            LEFT + 22.0 + s as f64 * 150.0,
            escape(&line.name)
        );
    }
    svg.push_str("</svg>");
    let mut head = vec![""];
    head.extend(lines.iter().map(|l| l.name.as_str()));
    let rows: Vec<Vec<String>> = x_labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let mut row = vec![label.clone()];
            row.extend(
                lines
                    .iter()
                    .map(|l| l.values.get(i).map(|v| number(*v)).unwrap_or_default()),
            );
            row
        })
        .collect();
    figure(title, &svg, &head, &rows)
}

fn open_svg(title: &str) -> String {
    format!(
        "<svg viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{t}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{t}</title>",
        t = escape(title)
    )
}

/// The y axis with its top value, and the x axis.
fn axes(svg: &mut String, max: f64) {
    let _ = write!(
        svg,
        "<line class=\"axis\" x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{y0}\"/>\
         <line class=\"axis\" x1=\"{LEFT}\" y1=\"{y0}\" x2=\"{W}\" y2=\"{y0}\"/>\
         <text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{top}</text>\
         <text x=\"{lx}\" y=\"{y0}\" text-anchor=\"end\">0</text>",
        y0 = H - BOTTOM,
        lx = LEFT - 4.0,
        ty = TOP + 8.0,
        top = number(max),
    );
}

fn x_label(svg: &mut String, x: f64, label: &str) {
    let _ = write!(
        svg,
        "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        H - BOTTOM + 16.0,
        escape(label)
    );
}

fn figure(title: &str, svg: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut table = String::from("<table class=\"sr-only\"><caption>");
    table.push_str(&escape(title));
    table.push_str("</caption><tr>");
    for h in head {
        let _ = write!(table, "<th>{}</th>", escape(h));
    }
    table.push_str("</tr>");
    for row in rows {
        table.push_str("<tr>");
        for cell in row {
            let _ = write!(table, "<td>{}</td>", escape(cell));
        }
        table.push_str("</tr>");
    }
    table.push_str("</table>");
    format!(
        "<figure class=\"chart\"><figcaption>{}</figcaption>{svg}{table}</figure>",
        escape(title)
    )
}

/// Bar height / line y for `value` on a scale topped at `max`.
fn scale(value: f64, max: f64) -> f64 {
    if max <= 0.0 || !value.is_finite() {
        return 0.0;
    }
    (value.max(0.0) / max) * (H - BOTTOM - TOP)
}

/// A round top for the axis: 1, 2 or 5 times a power of ten, at least the largest value.
fn nice_max(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.filter(|v| v.is_finite()).fold(0.0_f64, f64::max);
    if max <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|top| *top >= max)
        .unwrap_or(max)
}

fn label_step(n: usize) -> usize {
    n.div_ceil(12).max(1)
}

/// Whole numbers without decimals, others with up to two.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    tera::escape_html(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_svg_with_a_table_of_every_value_and_escaped_labels() {
        let svg = bars(
            "Emails <per day>",
            &[
                Bar {
                    label: "12-01".into(),
                    value: 3.0,
                    forecast: false,
                },
                Bar {
                    label: "12-02".into(),
                    value: 7.0,
                    forecast: true,
                },
            ],
        );
        assert!(svg.contains("<svg") && svg.contains("Emails &lt;per day&gt;"));
        assert!(svg.contains("<td>12-02 (forecast)</td><td>7</td>"));
        assert!(!svg.contains("<per day>"));
        let svg = lines(
            "Rates",
            &["a".into(), "b".into()],
            &[Line {
                name: "bounces".into(),
                values: vec![0.5, 1.25],
            }],
        );
        assert!(svg.contains("<polyline") && svg.contains("<td>1.25</td>"));
        assert_eq!(nice_max([0.0, 7.0].into_iter()), 10.0);
        assert_eq!(nice_max([130.0].into_iter()), 200.0);
        assert_eq!(nice_max(std::iter::empty()), 1.0);
    }
}
