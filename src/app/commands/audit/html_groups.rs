//! `audit --output html` of a large cluster: the VMs grouped by what they
//! share, as the text summary groups them, instead of a row each (10 000
//! VMs on 64 nodes made a page of 159 MB that no browser opens with ease).
//! The nodes × CPU types matrix stays: it has a column per distinct start
//! answer, not per VM.

use std::fmt::Write as _;

use super::html::esc;
use super::summary::GroupKey;
use crate::guard::audit::Audit;

/// Escaped text with its `commands` in `<code>`.
fn with_code(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

/// A section of grouped findings (the risks, or the others): its heading
/// (`id`, title, the count of VMs), then a table of groups — how many VMs,
/// every VMID (folded), what they share and their fix — or "None.".
pub(super) fn findings(
    s: &mut String,
    groups: &[&(GroupKey, Vec<u32>)],
    vms: usize,
    (id, title): (&str, &str),
) {
    let _ = writeln!(s, "<h2 id=\"{id}\">{title} ({vms})</h2>");
    if groups.is_empty() {
        s.push_str("<p class=\"none\">None.</p>\n");
        return;
    }
    let _ = writeln!(
        s,
        "<table id=\"{id}-table\"><tr><th>VMs</th><th>Why, and the fix</th></tr>"
    );
    for (key, vmids) in groups {
        let ids: Vec<String> = vmids.iter().map(u32::to_string).collect();
        let _ = write!(
            s,
            "<tr><td class=\"c\">{} {}<details><summary>VMIDs</summary>{}</details></td>\
             <td>{}",
            vmids.len(),
            if vmids.len() == 1 { "VM" } else { "VMs" },
            ids.join(", "),
            with_code(&key.text),
        );
        if let Some(fix) = &key.fix {
            let _ = write!(s, "<br>fix: {}", with_code(fix));
        }
        s.push_str("</td></tr>\n");
    }
    s.push_str("</table>\n");
}

/// In place of the VMs × nodes matrix: how to get it for fewer VMs.
pub(super) fn vms_nodes(s: &mut String, a: &Audit<'_>) {
    let _ = writeln!(
        s,
        "<h2 id=\"vms-nodes\">VMs × nodes</h2>\n<p class=\"none\">{} VMs: \
         a row each is for fewer of them — <code>pve-cpuguard audit -o html</code> with \
         <code>--on NODE</code>, <code>--vm VMID</code> or <code>--finding CODE</code> (or \
         <code>--all</code> for every VM); <code>-o json</code> has every VM's answers.</p>",
        a.vms.len()
    );
}
