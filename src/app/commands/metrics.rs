//! `pve-cpuguard metrics [--output-file PATH]`: Prometheus text for
//! node_exporter's textfile collector. The file is written atomically
//! (temporary file in the same directory, then rename), as the collector
//! requires: it may read at any moment and must never see half a file.

use std::path::Path;

use crate::app::cli::MetricsArgs;
use crate::app::output;
use crate::conf::settings::Settings;
use crate::error::{Error, ExitCode, Result};
use crate::guard::{audit_input, metrics, refusals};

/// Runs `metrics`.
///
/// # Errors
/// What the audit's inputs can fail with; an unwritable output file.
pub fn run(args: &MetricsArgs) -> Result<ExitCode> {
    let settings = Settings::resolve(&args.common)?;
    // The cached records as they are: their age is what is measured.
    let g = audit_input::gather(&settings, || None)?;
    let a = g.audit();
    // The metrics say "no data"; the reason goes to stderr (the timer's
    // journal), not into the Prometheus text.
    output::warn_cache(&g.fleet);
    let refusals = refusals::read(&settings.state_dir);
    let text = metrics::render(&a, &refusals);
    match &args.output_file {
        None => output::print_raw(&text)?,
        Some(path) => write_atomically(path, text.as_bytes())?,
    }
    Ok(ExitCode::Ok)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    if path.file_name().and_then(|n| n.to_str()).is_none() {
        return Err(Error::Usage(format!(
            "--output-file {}: not a file name",
            path.display()
        )));
    }
    // The temporary (`.NAME.XXXXXX.tmp`, O_EXCL) does not end in .prom, so
    // the collector never picks it up; a link at either path is not followed.
    crate::fsutil::replace_raw(path, bytes, Some(0o644)).map_err(|e| {
        Error::Config(format!(
            "{}: cannot write: {e}\nnote: the directory must exist and be writable (node_exporter's is usually /var/lib/prometheus/node-exporter)",
            path.display()
        ))
    })
}
