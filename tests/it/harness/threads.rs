//! A /proc/cpuinfo of any thread count, from the first processor block of a
//! real sample: the block repeated with `processor`, `apicid`,
//! `initial apicid`, `core id`, `physical id`, `siblings` and `cpu cores`
//! renumbered as a two-socket host with SMT prints them
//! (arch/x86/kernel/cpu/proc.c, show_cpuinfo).

/// `threads` blocks (an even number) of `sample`'s first block.
pub fn cpuinfo_with_threads(sample: &str, threads: usize) -> String {
    let first = sample.split("\n\n").next().unwrap_or("");
    let sockets = if threads >= 4 { 2 } else { 1 };
    let per_socket = threads / sockets;
    let cores = (per_socket / 2).max(1);
    let mut out = String::with_capacity((first.len() + 2) * threads);
    for i in 0..threads {
        let socket = i / per_socket;
        let core = (i % per_socket) % cores;
        for line in first.lines() {
            let key = line.split(':').next().unwrap_or("").trim();
            let value = match key {
                "processor" => Some(i),
                "physical id" => Some(socket),
                "siblings" => Some(per_socket),
                "core id" => Some(core),
                "cpu cores" => Some(cores),
                "apicid" | "initial apicid" => Some(i),
                _ => None,
            };
            match value {
                Some(v) => out.push_str(&format!("{key}\t: {v}")),
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out
}
