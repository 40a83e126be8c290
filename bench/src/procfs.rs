//! What the kernel says about a process: CPU time, resident memory, and the slab floor.

use std::time::Instant;

/// Clock ticks per second for `/proc/<pid>/stat` CPU fields.
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// User and system CPU seconds a process has used so far.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimes {
    pub user: f64,
    pub system: f64,
}

impl CpuTimes {
    pub fn of(pid: u32) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may hold spaces; the fields we want follow its closing parenthesis.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = ticks_per_second();
        Some(Self {
            user: fields.get(11)?.parse::<f64>().ok()? / ticks,
            system: fields.get(12)?.parse::<f64>().ok()? / ticks,
        })
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }

    pub fn total(self) -> f64 {
        self.user + self.system
    }
}

/// CPU use of a process over a window, as measured from outside.
pub struct CpuWindow {
    pid: u32,
    start: CpuTimes,
    at: Instant,
}

impl CpuWindow {
    pub fn start(pid: u32) -> Self {
        Self {
            pid,
            start: CpuTimes::of(pid).unwrap_or_default(),
            at: Instant::now(),
        }
    }

    /// CPU used since the start, and the fraction of one core that is; `None` when the
    /// process is gone (it crashed or was killed during the run).
    pub fn finish(&self) -> Option<(CpuTimes, f64)> {
        let used = CpuTimes::of(self.pid)?.since(self.start);
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        Some((used, used.total() / wall))
    }
}

/// Resident set size in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Kernel slab memory in bytes (machine-wide): socket buffers and their bookkeeping live here,
/// which is the floor no server can go below.
pub fn slab_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("Slab:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Raises this process's open-file limit to its hard limit, so 10 k sockets fit; children
/// (the servers under test) inherit it.
pub fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

/// Pins this process (the loader) to one CPU, so the server under test gets the other.
pub fn pin_self_to(cpu: usize) -> bool {
    // SAFETY: cpu_set_t is plain data, zeroed is a valid empty set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// How many CPUs this machine has online (not this process's affinity mask, which pinning
/// narrows).
pub fn cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(online).unwrap_or(1).max(1)
}
