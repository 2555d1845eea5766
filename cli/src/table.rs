//! Plain text tables: columns padded to their widest cell, two spaces apart, the last
//! column left ragged. Cells must already be escaped and one line each.

pub fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = head.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            text.push_str(cell);
            if i + 1 < N {
                text.push_str(&" ".repeat(w.saturating_sub(cell.chars().count()) + 2));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(head);
    for row in rows {
        out.push_str(&line(row.each_ref().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_their_widest_cell() {
        let rows = [["1".to_string(), "é-long".to_string(), "x".to_string()]];
        assert_eq!(
            table(["ID", "NAME", "LAST"], &rows),
            "ID  NAME    LAST\n1   é-long  x\n"
        );
        assert_eq!(table(["A", "B"], &[]), "A  B\n");
    }
}
