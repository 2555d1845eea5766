//! A job's DAG as SVG: one column per depth (longest path from a root), one box per
//! task coloured and labelled by its state, one arrow per dependency. Boxes within a
//! column are ordered by where their upstream tasks sit, which keeps most arrows from
//! crossing. Every text from the job is escaped.

use keel_engine::{GroupKind, JobSpec};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Jobs with more tasks are not drawn (the page lists them instead).
pub(crate) const MAX_DRAWN: usize = 200;

const BOX_W: usize = 160;
const BOX_H: usize = 38;
const GAP_X: usize = 56;
const GAP_Y: usize = 18;
const PAD: usize = 16;
/// Characters of a task key shown in its box; the full key is in the box's title.
const KEY_CHARS: usize = 20;

/// Escapes text for SVG/HTML element content and double-quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fill and border of a task box by state word; each state also reads as text.
fn colours(state: &str) -> (&'static str, &'static str) {
    match state {
        "succeeded" => ("#b9e4c6", "#2f7d4a"),
        "failed" => ("#f6c0be", "#a8322f"),
        "running" => ("#bcd0f5", "#3a5ea8"),
        "offered" => ("#dde7fa", "#3a5ea8"),
        "blocked" | "parked" | "budget_stopped" | "rate_limited" => ("#f8dca8", "#a86a12"),
        "suspended" => ("#e0d4f3", "#6a4aa0"),
        "skipped" | "cancelled" => ("#dedede", "#666666"),
        _ => ("#f3f5f7", "#7b8794"),
    }
}

fn needs(kind: GroupKind, n: usize) -> Option<String> {
    match kind {
        GroupKind::AllOf => None,
        GroupKind::AnyOf => Some(format!("any of {n}")),
        GroupKind::Quorum(k) => Some(format!("{k} of {n}")),
    }
}

/// Depth of each task: 0 for roots, else one more than its deepest upstream task.
/// Upstream keys not in the job are ignored; the engine admits no cycles, and a cycle
/// here would leave its tasks at depth 0 rather than loop.
fn depths(upstream: &[Vec<usize>]) -> Vec<usize> {
    let n = upstream.len();
    let mut depth = vec![0; n];
    let mut indegree: Vec<usize> = upstream.iter().map(Vec::len).collect();
    let mut downstream = vec![Vec::new(); n];
    for (d, ups) in upstream.iter().enumerate() {
        for &u in ups {
            downstream[u].push(d);
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    while let Some(u) = ready.pop() {
        for &d in &downstream[u] {
            depth[d] = depth[d].max(depth[u] + 1);
            indegree[d] -= 1;
            if indegree[d] == 0 {
                ready.push(d);
            }
        }
    }
    depth
}

/// Where each task goes: its column (depth) and its row within the column.
struct Layout {
    upstream: Vec<Vec<usize>>,
    depth: Vec<usize>,
    row: Vec<usize>,
    columns: usize,
    tallest: usize,
}

fn layout(spec: &JobSpec) -> Layout {
    let n = spec.tasks.len();
    let index: BTreeMap<&str, usize> = spec
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.key.as_str(), i))
        .collect();
    let upstream: Vec<Vec<usize>> = spec
        .tasks
        .iter()
        .map(|t| {
            t.deps
                .iter()
                .flat_map(|g| g.upstream.iter())
                .filter_map(|k| index.get(k.as_str()).copied())
                .collect()
        })
        .collect();
    let depth = depths(&upstream);
    let columns = depth.iter().max().map_or(1, |d| d + 1);
    // Within a column, tasks are ordered by the mean row of their upstream tasks.
    let mut row = vec![0usize; n];
    let mut tallest = 1;
    for col in 0..columns {
        let mut members: Vec<(usize, usize)> = (0..n)
            .filter(|&i| depth[i] == col)
            .map(|i| {
                let ups = &upstream[i];
                let mean = if ups.is_empty() {
                    i * 1000
                } else {
                    ups.iter().map(|&u| row[u] * 1000).sum::<usize>() / ups.len()
                };
                (mean, i)
            })
            .collect();
        members.sort();
        for (r, (_, i)) in members.iter().enumerate() {
            row[*i] = r;
        }
        tallest = tallest.max(members.len());
    }
    Layout {
        upstream,
        depth,
        row,
        columns,
        tallest,
    }
}

/// Draws `spec`'s DAG with each task's state from `state_of` (by task key). None when
/// the job has more than [`MAX_DRAWN`] tasks.
pub(crate) fn svg(spec: &JobSpec, state_of: &BTreeMap<&str, &'static str>) -> Option<String> {
    let n = spec.tasks.len();
    if n > MAX_DRAWN || n == 0 {
        return None;
    }
    let l = layout(spec);
    let x = |i: usize| PAD + l.depth[i] * (BOX_W + GAP_X);
    let y = |i: usize| PAD + 14 + l.row[i] * (BOX_H + GAP_Y);
    let width = PAD * 2 + l.columns * BOX_W + (l.columns - 1) * GAP_X;
    let height = PAD * 2 + 14 + l.tallest * (BOX_H + GAP_Y);
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" id="dag" role="img" aria-labelledby="dag-title" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12"><title id="dag-title">Dependency graph of {} ({n} tasks)</title><defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#7b8794"/></marker></defs>"##,
        esc(&spec.name)
    );
    for (d, ups) in l.upstream.iter().enumerate() {
        for &u in ups {
            let (x1, y1) = (x(u) + BOX_W, y(u) + BOX_H / 2);
            let (x2, y2) = (x(d), y(d) + BOX_H / 2);
            let mid = (x1 + x2) / 2;
            let _ = write!(
                s,
                r##"<path class="edge" data-from="{}" data-to="{}" d="M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2} {y2}" fill="none" stroke="#7b8794" stroke-width="1.2" marker-end="url(#arrow)"/>"##,
                esc(&spec.tasks[u].key),
                esc(&spec.tasks[d].key)
            );
        }
    }
    for (i, task) in spec.tasks.iter().enumerate() {
        let state = state_of
            .get(task.key.as_str())
            .copied()
            .unwrap_or("unknown");
        let needs = task
            .deps
            .as_ref()
            .and_then(|g| needs(g.kind, g.upstream.len()));
        node(&mut s, (x(i), y(i)), &task.key, state, needs);
    }
    s.push_str("</svg>");
    Some(s)
}

fn node(out: &mut String, (x, y): (usize, usize), key: &str, state: &str, needs: Option<String>) {
    let (fill, stroke) = colours(state);
    let shown: String = if key.chars().count() > KEY_CHARS {
        key.chars().take(KEY_CHARS - 1).chain(['…']).collect()
    } else {
        key.to_string()
    };
    let _ = write!(
        out,
        r#"<g class="node" data-key="{key}" data-state="{state}"><title>{key}: {state}</title><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" fill="{fill}" stroke="{stroke}"/><text x="{}" y="{}" font-weight="bold">{}</text><text x="{}" y="{}" font-size="11" fill="{stroke}">{state}</text>"#,
        x + 8,
        y + 16,
        esc(&shown),
        x + 8,
        y + 31,
        key = esc(key),
        state = esc(state),
    );
    if let Some(needs) = needs {
        let _ = write!(
            out,
            r##"<text x="{x}" y="{}" font-size="10" fill="#52606d">needs {needs}</text>"##,
            y.saturating_sub(3)
        );
    }
    out.push_str("</g>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_engine::{TaskSpec, UnsatisfiedPolicy};

    fn spec() -> JobSpec {
        JobSpec::new(
            "<b>job</b>",
            vec![
                TaskSpec::new("split"),
                TaskSpec::new("enc-1").after(GroupKind::AllOf, &["split"]),
                TaskSpec::new("enc-2").after(GroupKind::AllOf, &["split"]),
                TaskSpec::new("<script>alert(1)</script>")
                    .after(GroupKind::Quorum(1), &["enc-1", "enc-2"]),
            ],
        )
    }

    #[test]
    fn draws_a_box_per_task_and_an_arrow_per_dependency_in_depth_columns() {
        let spec = spec();
        let states = BTreeMap::from([("split", "succeeded"), ("enc-1", "running")]);
        let out = svg(&spec, &states).unwrap();
        assert_eq!(out.matches(r#"class="node""#).count(), 4);
        assert_eq!(out.matches(r#"class="edge""#).count(), 4);
        assert!(out.contains(r#"data-key="split" data-state="succeeded""#));
        assert!(out.contains(r#"data-key="enc-2" data-state="unknown""#));
        assert!(out.contains("needs 1 of 2"));
        // split in column 0, encodes in column 1, the join in column 2.
        let x_of = |key: &str| {
            let at = out.find(&format!(r#"data-key="{key}""#)).unwrap();
            let rect = &out[at..];
            let x = &rect[rect.find(r#"<rect x=""#).unwrap() + 9..];
            x[..x.find('"').unwrap()].parse::<usize>().unwrap()
        };
        assert!(x_of("split") < x_of("enc-1"));
        assert_eq!(x_of("enc-1"), x_of("enc-2"));
        assert!(x_of("enc-1") < x_of("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn every_text_from_the_job_is_escaped() {
        let out = svg(&spec(), &BTreeMap::new()).unwrap();
        assert!(!out.contains("<script>"), "{out}");
        assert!(!out.contains("<b>"));
        assert!(out.contains("&lt;b&gt;job&lt;/b&gt;"));
        assert_eq!(esc(r#"a"'<>&"#), "a&quot;&#39;&lt;&gt;&amp;");
    }

    #[test]
    fn big_jobs_are_not_drawn_and_cycles_do_not_loop() {
        let tasks = (0..=MAX_DRAWN)
            .map(|i| TaskSpec::new(format!("t{i}")))
            .collect();
        assert_eq!(svg(&JobSpec::new("big", tasks), &BTreeMap::new()), None);
        let mut a = TaskSpec::new("a").after(GroupKind::AllOf, &["b"]);
        a.deps.as_mut().unwrap().on_unsatisfied = UnsatisfiedPolicy::Skip;
        let b = TaskSpec::new("b").after(GroupKind::AllOf, &["a"]);
        let out = svg(&JobSpec::new("cycle", vec![a, b]), &BTreeMap::new()).unwrap();
        assert_eq!(out.matches(r#"class="node""#).count(), 2);
    }
}
