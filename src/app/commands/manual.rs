//! What the man pages say beyond the clap definitions: for each command
//! its files, exit statuses and examples (one table per command), rendered
//! as the ENVIRONMENT, FILES, EXIT STATUS, EXAMPLES and SEE ALSO sections
//! that clap_mangen does not write. ENVIRONMENT comes from the clap
//! definitions themselves (each option's `env`), so it cannot disagree
//! with `--help`; the few variables read outside clap are listed here.
//! Also `pve-cpuguard.conf(5)`, from the shipped configuration file.
//!
//! Exit statuses follow each command's `run` (src/app/commands/*.rs) and
//! `Error::exit_code` (src/error.rs).

use clap::Command;
use roff::{bold, italic, roman, Roff};

/// One command's page beyond its options.
pub struct Page {
    /// The subcommand (`""` for pve-cpuguard(1)).
    pub command: &'static str,
    /// Variables read outside clap: (name, meaning).
    pub environment: &'static [(&'static str, &'static str)],
    /// (path, what it is to this command).
    pub files: &'static [(&'static str, &'static str)],
    /// (status, meaning).
    pub exit: &'static [(u8, &'static str)],
    /// (what it does, command line).
    pub examples: &'static [(&'static str, &'static str)],
}

const CONF: (&str, &str) = (
    "/etc/pve-cpuguard/pve-cpuguard.conf",
    "The configuration file (see pve-cpuguard.conf(5)); a flag or environment variable overrides it.",
);
const CACHE: (&str, &str) = (
    "/var/cache/pve-cpuguard/cluster.json",
    "The cluster CPU cache written by scan (and the refresh timer); FILE.lock beside it is the writers' lock.",
);
const CPUINFO: (&str, &str) = ("/proc/cpuinfo", "This node's CPU and its flags.");
const VM_CONF: (&str, &str) = (
    "/etc/pve/nodes/NODE/qemu-server/VMID.conf",
    "The VMs' configurations (their cpu: lines), and /etc/pve/.vmlist to find them.",
);
const CPU_MODELS: (&str, &str) = (
    "/etc/pve/virtual-guest/cpu-models.conf",
    "Custom CPU models (cpu: custom-NAME).",
);
const STATE: (&str, &str) = (
    "/var/lib/pve-cpuguard",
    "The guard's state: refusals.tally (one byte per refusal on this node) and last-refusal.json.",
);
const CHAIN: (&str, &str) = (
    "/etc/pve/pve-cpuguard/chain.conf",
    "The hookscript each VM had before attach, run after the guard allows.",
);
const KNOWN_HOSTS: (&str, &str) = (
    "/etc/pve/nodes/NODE/ssh_known_hosts",
    "Host keys, else /etc/pve/priv/known_hosts, /etc/ssh/ssh_known_hosts, ~/.ssh/known_hosts.",
);
const SSH_KEYS: (&str, &str) = (
    "~/.ssh/id_ed25519",
    "The key to log in with (also id_ecdsa and id_rsa, after the agent), unless --ssh-key.",
);
const QM: (&str, &str) = (
    "/usr/sbin/qm",
    "Proxmox VE's VM tool, run to change or move VMs.",
);
const RUN_DIR: (&str, &str) = (
    "/var/run/qemu-server/VMID.pid",
    "Whether the VM runs on this node.",
);

const SSH_AUTH_SOCK: (&str, &str) = (
    "SSH_AUTH_SOCK",
    "When set and no --ssh-key is given, keys are offered by the SSH agent first.",
);
const HOME: (&str, &str) = ("HOME", "Where ~/.ssh is (default /root).");

const EXIT_USAGE: (u8, &str) = (
    2,
    "A usage, configuration or input error (the message names the file and line).",
);

/// Every page, the main one first.
pub const PAGES: &[Page] = &[
    Page {
        command: "",
        environment: &[],
        files: &[CONF, CACHE, STATE],
        exit: &[
            (0, "Compatible, or done."),
            (1, "Incompatible or refused (scan: some nodes did not answer)."),
            EXIT_USAGE,
            (3, "Unknown: not enough data to decide."),
        ],
        examples: &[
            ("Learn every node's CPU, then see which VMs are at risk:", "pve-cpuguard scan && pve-cpuguard audit"),
            ("Put the guard on every VM of this node:", "pve-cpuguard attach --all"),
            ("Move a VM only if the target can give it its CPU:", "pve-cpuguard migrate 100 pve2 --online"),
        ],
    },
    Page {
        command: "inspect",
        environment: &[],
        files: &[CPUINFO, CONF, CACHE],
        exit: &[
            (0, "This host's CPU was read."),
            EXIT_USAGE,
            (3, "QEMU did not answer --probe in time or gave no usable answer."),
        ],
        examples: &[
            ("This host's level and the CPU types it can run:", "pve-cpuguard inspect"),
            ("What QEMU under KVM gives guests here:", "pve-cpuguard inspect --probe kvm"),
            ("Another machine's CPU, from a saved /proc/cpuinfo:", "pve-cpuguard inspect --cpuinfo new-node.cpuinfo -o json"),
        ],
    },
    Page {
        command: "why-not",
        environment: &[],
        files: &[CPUINFO, CACHE, CPU_MODELS, CONF],
        exit: &[
            (0, "This host can run the CPU type."),
            (1, "It cannot: the missing flags are listed."),
            EXIT_USAGE,
            (3, "Unknown (e.g. a model this version does not know)."),
        ],
        examples: &[
            ("Why a VM with cpu: x86-64-v4 would not start here:", "pve-cpuguard why-not x86-64-v4"),
            ("A named model with extra flags:", "pve-cpuguard why-not 'cputype=EPYC-Rome,flags=+pdpe1gb'"),
        ],
    },
    Page {
        command: "hook",
        environment: &[
            ("PVE_MIGRATED_FROM", "Set by Proxmox VE on the target of a migration: the source node."),
            ("PVE_CPUGUARD_CHAINED", "Set for a chained hookscript (VMID, phase and the guard's own process); the guard run again by it for the same VM and phase does nothing, so a chain cannot loop. Any other process that inherits it is checked as always."),
        ],
        files: &[VM_CONF, CACHE, CPUINFO, CPU_MODELS, CHAIN, STATE, CONF],
        exit: &[
            (0, "The start or incoming migration may go ahead (also for phases other than pre-start); under the default policy also when the check cannot be made (an input unreadable, the deadline passed, memory ran out, no watchdog thread), with a warning."),
            (1, "Refused: Proxmox VE does not start the VM; the reason is in the task log. Under policy strict also when the check cannot be made."),
            EXIT_USAGE,
            (255, "Or any other status: a chained hookscript's own, passed on."),
        ],
        examples: &[
            ("Set up by attach; Proxmox VE then runs:", "pve-cpuguard-hook 100 pre-start"),
            ("The same check by hand, as on the target of a migration from pve1:", "PVE_MIGRATED_FROM=pve1 pve-cpuguard hook 100 pre-start"),
        ],
    },
    Page {
        command: "migrate",
        environment: &[SSH_AUTH_SOCK, HOME, ("SUDO_USER", "Who ran --force-unsafe, logged with the reason (else USER, LOGNAME).")],
        files: &[VM_CONF, CACHE, CPUINFO, CPU_MODELS, RUN_DIR, QM, KNOWN_HOSTS, SSH_KEYS, STATE, CONF],
        exit: &[
            (0, "qm migrate ran and succeeded (the process becomes qm: its status is qm's)."),
            (1, "Refused: qm was not run."),
            EXIT_USAGE,
        ],
        examples: &[
            ("Live-migrate VM 100 to pve2 if pve2 can give it its CPU:", "pve-cpuguard migrate 100 pve2 --online"),
            ("Override a refusal, logged with who and why:", "pve-cpuguard migrate --force-unsafe --reason 'vendor tested' 100 pve2 --online"),
        ],
    },
    Page {
        command: "check",
        environment: &[],
        files: &[VM_CONF, CACHE, CPUINFO, CPU_MODELS, RUN_DIR, CONF],
        exit: &[
            (0, "Every target checked can take the VM."),
            (1, "Some target cannot."),
            EXIT_USAGE,
            (3, "Some target is unknown (no or stale record, unknown model)."),
        ],
        examples: &[
            ("Where VM 100 could move:", "pve-cpuguard check 100"),
            ("Whether it could start on pve3:", "pve-cpuguard check 100 --mode start --target pve3"),
        ],
    },
    Page {
        command: "scan",
        environment: &[SSH_AUTH_SOCK, HOME],
        files: &[
            ("/etc/pve/corosync.conf", "The node list (else /etc/corosync/corosync.conf); /etc/pve/.members for this node's name."),
            KNOWN_HOSTS,
            SSH_KEYS,
            CPUINFO,
            CACHE,
            CONF,
        ],
        exit: &[
            (0, "Every node answered; the cache is updated."),
            (1, "Some nodes did not answer: the cache keeps their last record, marked."),
            EXIT_USAGE,
        ],
        examples: &[
            ("Read every node (the refresh timer does this hourly):", "pve-cpuguard scan"),
            ("Without QEMU, /proc/cpuinfo only:", "pve-cpuguard scan --probe off"),
            ("From published records alone, never over SSH:", "pve-cpuguard scan --no-ssh"),
        ],
    },
    Page {
        command: "publish",
        environment: &[],
        files: &[
            ("/etc/pve/nodes/NODE/pve-cpuguard.json", "This node's published record, read by every node's scan (replaced atomically, mode 0640)."),
            CPUINFO,
            ("/dev/kvm", "Opened by QEMU for the probe under KVM (--probe kvm, the default)."),
            CONF,
        ],
        exit: &[
            (0, "The record is written."),
            (1, "/etc/pve is read-only (no quorum): the last published record stays."),
            EXIT_USAGE,
        ],
        examples: &[
            ("Publish this node's record (the publish unit does this at boot and before every refresh):", "pve-cpuguard publish"),
            ("Without QEMU, /proc/cpuinfo only:", "pve-cpuguard publish --probe off"),
        ],
    },
    Page {
        command: "ha-rules",
        environment: &[],
        files: &[
            ("/etc/pve/ha/resources.cfg", "Which VMs the HA manager recovers."),
            ("/etc/pve/ha/rules.cfg", "The HA rules; only rules with the cpuguard- prefix and pve-cpuguard's comment are ever changed."),
            ("/etc/pve/.members", "Quorum: without it nothing is applied."),
            CACHE,
            CONF,
        ],
        exit: &[
            (0, "The rules match the cache (or, with --dry-run, the calls are printed)."),
            (1, "An ha-manager call failed, a rule of an administrator conflicts, or there is no quorum."),
            EXIT_USAGE,
        ],
        examples: &[
            ("What would change:", "pve-cpuguard ha-rules --dry-run"),
            ("Keep every HA VM on the nodes its CPU runs on:", "pve-cpuguard ha-rules --apply"),
        ],
    },
    Page {
        command: "proxlb-tags",
        environment: &[],
        files: &[
            ("/etc/pve/nodes/*/qemu-server/*.conf", "The VMs' tags: lines."),
            ("/etc/pve/pve-cpuguard/proxlb-tags.json", "Which tags pve-cpuguard wrote: only those are ever removed."),
            CACHE,
            CONF,
        ],
        exit: &[
            (0, "This node's VMs carry the tags the cache calls for."),
            (1, "A qm set call is pending or failed."),
            EXIT_USAGE,
        ],
        examples: &[
            ("What would change:", "pve-cpuguard proxlb-tags --dry-run"),
            ("Tag this node's VMs for ProxLB:", "pve-cpuguard proxlb-tags --apply"),
        ],
    },
    Page {
        command: "plan",
        environment: &[],
        files: &[
            VM_CONF,
            CACHE,
            CPUINFO,
            CPU_MODELS,
            ("/etc/pve/ha/resources.cfg", "The HA-managed VMs."),
            ("/etc/pve/ha/rules.cfg", "The HA rules ha-rules would change (nothing is changed)."),
            CONF,
        ],
        exit: &[
            (0, "Nothing gets worse."),
            (1, "Some VM loses a node it has, cannot use an added node, or is left with none."),
            EXIT_USAGE,
            (
                3,
                "Nothing known gets worse, but what it does to some VM cannot be judged; or no \
                 node has data (run scan).",
            ),
        ],
        examples: &[
            (
                "Adding a server: on it, before it joins, then on a cluster node:",
                "pve-cpuguard publish --output-file pve4.json; pve-cpuguard plan --add-node pve4=pve4.json",
            ),
            ("Retiring a server:", "pve-cpuguard plan --remove-node pve1"),
            (
                "Raising the baseline after the last old server is gone:",
                "pve-cpuguard plan --remove-node old1 --set-cpu-all x86-64-v3",
            ),
            (
                "Or to the flags every node has, as a custom model (see pve-cpuguard-baseline(1)):",
                "pve-cpuguard plan --set-cpu-all custom-evc",
            ),
            ("What a server to buy must offer:", "pve-cpuguard plan --need"),
        ],
    },
    Page {
        command: "status",
        environment: &[],
        files: &[CACHE, CONF],
        exit: &[
            (0, "Every node has fresh data."),
            (1, "Some record is stale or missing."),
            EXIT_USAGE,
            (3, "The cache holds no data (run scan)."),
        ],
        examples: &[
            ("The cached view of the cluster:", "pve-cpuguard status"),
            ("With records older than a day counted stale:", "pve-cpuguard status --cache-max-age 1d"),
        ],
    },
    Page {
        command: "baseline",
        environment: &[],
        files: &[
            CACHE,
            CPU_MODELS,
            (
                "/usr/bin/pvesh",
                "Proxmox VE's API tool, which --apply runs to add the custom model.",
            ),
            CONF,
        ],
        exit: &[
            (0, "From fresh data; with --custom-model, accepted on every node (and added, or there already)."),
            (
                1,
                "Stale or missing records were involved; or the custom model is refused on some node, differs from the one of that name in cpu-models.conf, or pvesh failed.",
            ),
            EXIT_USAGE,
            (3, "The cache holds no data (run scan)."),
        ],
        examples: &[
            ("The CPU type every node supports:", "pve-cpuguard baseline"),
            ("For a script:", "pve-cpuguard baseline -o json"),
            ("The cluster's own custom model, checked:", "pve-cpuguard baseline --custom-model evc"),
            ("The pvesh call that would add it:", "pve-cpuguard baseline --custom-model evc --dry-run"),
            ("Add it, then see what moving every VM to it gives:", "pve-cpuguard baseline --custom-model evc --apply; pve-cpuguard plan --set-cpu-all custom-evc"),
        ],
    },
    Page {
        command: "audit",
        environment: &[],
        files: &[VM_CONF, CACHE, CPUINFO, CPU_MODELS, ("/etc/pve/ha/resources.cfg", "The HA-managed VMs."), CONF],
        exit: &[
            (0, "Nothing is flagged."),
            (1, "Some VM is at risk."),
            EXIT_USAGE,
            (3, "The cache holds no node data (run scan)."),
        ],
        examples: &[
            ("Every VM against every node:", "pve-cpuguard audit"),
            ("For a report or a ticket:", "pve-cpuguard audit -o json > audit.json"),
        ],
    },
    Page {
        command: "attach",
        environment: &[],
        files: &[
            ("/etc/pve/storage.cfg", "The storages; the chosen one needs snippets content."),
            ("/usr/share/pve-cpuguard/pve-cpuguard-hook", "The hook file copied into the storage's snippets directory."),
            VM_CONF,
            CHAIN,
            QM,
            CONF,
        ],
        exit: &[
            (0, "Every selected VM is done."),
            (1, "Some could not be changed (each is named)."),
            EXIT_USAGE,
        ],
        examples: &[
            ("What would change, changing nothing:", "pve-cpuguard attach --all --dry-run"),
            ("Every VM of this node, the hook file on storage local:", "pve-cpuguard attach --all --storage local"),
        ],
    },
    Page {
        command: "detach",
        environment: &[],
        files: &[("/etc/pve/storage.cfg", "The storages."), VM_CONF, CHAIN, QM, CONF],
        exit: &[
            (0, "Every selected VM is done."),
            (1, "Some could not be changed (each is named)."),
            EXIT_USAGE,
        ],
        examples: &[
            ("Before removing the package:", "pve-cpuguard detach --all"),
            ("Two VMs:", "pve-cpuguard detach 100 101"),
        ],
    },
    Page {
        command: "metrics",
        environment: &[],
        files: &[
            VM_CONF,
            CACHE,
            STATE,
            ("/var/lib/prometheus/node-exporter", "node_exporter's textfile directory, for --output-file."),
            CONF,
        ],
        exit: &[(0, "The metrics were written."), EXIT_USAGE],
        examples: &[(
            "For node_exporter's textfile collector (e.g. from a timer):",
            "pve-cpuguard metrics --output-file /var/lib/prometheus/node-exporter/pve-cpuguard.prom",
        )],
    },
];

/// The page table of a subcommand (`""`: the main page).
#[must_use]
pub fn page(command: &str) -> Option<&'static Page> {
    PAGES.iter().find(|p| p.command == command)
}

/// Appends ENVIRONMENT, FILES, EXIT STATUS, EXAMPLES and SEE ALSO.
pub fn extra_sections(roff: &mut Roff, cmd: &Command, page: &Page, others: &[&str]) {
    roff.control("SH", ["ENVIRONMENT"]);
    let mut any = false;
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
            continue;
        };
        any = true;
        roff.control("TP", []);
        roff.text([bold(env.to_string_lossy())]);
        roff.text([roman("Same as "), bold(format!("--{long}")), roman(".")]);
    }
    for (name, what) in page.environment {
        any = true;
        roff.control("TP", []);
        roff.text([bold(*name)]);
        roff.text([roman(*what)]);
    }
    if !any {
        roff.text([roman("No variables beyond those of the subcommands.")]);
    }
    roff.control("PP", []);
    roff.text([
        roman("Precedence, highest first: option, environment variable, "),
        italic("pve-cpuguard.conf"),
        roman("(5), default."),
    ]);

    roff.control("SH", ["FILES"]);
    for (path, what) in page.files {
        roff.control("TP", []);
        roff.text([italic(*path)]);
        roff.text([roman(*what)]);
    }

    roff.control("SH", ["EXIT STATUS"]);
    for (code, what) in page.exit {
        roff.control("TP", []);
        roff.text([bold(code.to_string())]);
        roff.text([roman(*what)]);
    }

    if PAGES_WITH_REFUSAL_CODES.contains(&page.command) {
        refusal_codes(roff);
    }

    roff.control("SH", ["EXAMPLES"]);
    for (what, line) in page.examples {
        roff.control("PP", []);
        roff.text([roman(*what)]);
        roff.control("RS", ["4"]);
        roff.control("nf", []);
        roff.text([bold(*line)]);
        roff.control("fi", []);
        roff.control("RE", []);
    }

    roff.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<String> = others.iter().map(|o| format!("{o}(1)")).collect();
    refs.push("pve-cpuguard.conf(5)".into());
    refs.push("qm(1)".into());
    // No hyphenation: a page name broken across lines cannot be looked up.
    roff.control("nh", []);
    roff.text([roman(refs.join(", "))]);
    roff.control("hy", []);
}

/// The pages of the commands that judge a VM and can refuse it (`""`: the
/// main page).
const PAGES_WITH_REFUSAL_CODES: &[&str] = &["", "hook", "migrate", "check", "why-not", "audit"];

/// REFUSAL CODES: each reason a refusal can give (the `reasons` of
/// `--output json`), what it means and what fixes it.
fn refusal_codes(roff: &mut Roff) {
    roff.control("SH", ["REFUSAL CODES"]);
    roff.text([roman(
        "A refusal names each reason; --output json gives its code. \
         When the answer cannot be known (no data for a node, an unknown model) \
         it is unknown instead: the policy decides (default: allow with a warning, \
         strict: refuse).",
    )]);
    for (code, means, fix) in crate::cpu::verdict::codes::REFUSAL_CODES {
        roff.control("TP", []);
        roff.text([bold(*code)]);
        roff.text([roman(format!("{means} Fix: {fix}"))]);
    }
}

/// The shipped configuration file, the source of `pve-cpuguard.conf(5)`.
const SHIPPED_CONF: &str = include_str!("../../../packaging/pve-cpuguard.conf");

/// `pve-cpuguard.conf(5)`: the shipped file's own comments, key by key
/// (its `## Heading` lines become subsections, each `#key = default` line
/// a key with the comment above it), so the page and the file cannot
/// disagree.
#[must_use]
pub fn conf_page(version: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control(
        "TH",
        [
            "PVE-CPUGUARD.CONF",
            "5",
            "",
            &format!("pve-cpuguard {version}"),
            "File Formats",
        ],
    );
    roff.control("SH", ["NAME"]);
    roff.text([roman(
        "pve-cpuguard.conf - pve-cpuguard's settings on a node",
    )]);
    roff.control("SH", ["SYNOPSIS"]);
    roff.text([italic("/etc/pve-cpuguard/pve-cpuguard.conf")]);
    roff.control("SH", ["DESCRIPTION"]);

    let mut comment: Vec<&str> = Vec::new();
    let mut in_intro = true;
    let flush_paragraph = |roff: &mut Roff, lines: &mut Vec<&str>| {
        if !lines.is_empty() {
            roff.control("PP", []);
            let joined: Vec<&str> = lines.iter().map(|l| l.trim()).collect();
            roff.text([roman(joined.join(" "))]);
            lines.clear();
        }
    };
    for raw in SHIPPED_CONF.lines() {
        let line = raw.trim_end();
        if let Some(heading) = line.strip_prefix("## ") {
            in_intro = false;
            comment.clear();
            roff.control("SS", [heading.trim_end_matches(['#', ' '])]);
        } else if let Some((key, default)) = setting(line) {
            roff.control("TP", []);
            roff.text([bold(key), roman(" = "), italic(default)]);
            for (i, text) in comment.drain(..).enumerate() {
                // The file's value lists (indented) and its "Flag …,
                // environment …" line start lines of their own.
                if i > 0 && (text.starts_with(' ') || text.starts_with("Flag ")) {
                    roff.control("br", []);
                }
                roff.text([roman(text.trim_start())]);
            }
        } else if let Some(text) = line.strip_prefix('#') {
            // One leading space is the comment's; more indent a list item.
            let text = text.strip_prefix(' ').unwrap_or(text);
            if in_intro && text.starts_with('/') && comment.is_empty() {
                continue; // the file's own title line
            }
            if text.trim().is_empty() {
                if in_intro {
                    flush_paragraph(&mut roff, &mut comment);
                }
            } else {
                comment.push(text);
            }
        } else if line.is_empty() && in_intro {
            flush_paragraph(&mut roff, &mut comment);
        }
    }
    roff.control("SH", ["FILES"]);
    roff.control("TP", []);
    roff.text([italic("/etc/pve-cpuguard/pve-cpuguard.conf")]);
    roff.text([roman(
        "This file (a dpkg conffile: edits survive upgrades). Another path: --config or PVE_CPUGUARD_CONFIG.",
    )]);
    roff.control("SH", ["SEE ALSO"]);
    roff.text([roman(
        "pve-cpuguard(1), pve-cpuguard-scan(1), pve-cpuguard-audit(1)",
    )]);
    roff
}

/// A commented-out setting line, `#key = value`: (key, value).
fn setting(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?;
    if rest.starts_with([' ', '#']) {
        return None;
    }
    let (key, value) = rest.split_once(" = ")?;
    key.chars()
        .all(|c| c.is_ascii_lowercase() || c == '_')
        .then_some((key, value.trim()))
}
