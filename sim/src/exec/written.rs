//! Which pages of an instance's heap an execution wrote, so that writing the heap back into its
//! pages (and undoing a trap) costs the pages written, not the whole heap.
//!
//! Linux (6.7 and later) tells: a range registered with a userfaultfd in asynchronous
//! write-protect mode has every page write-protected by a `PAGEMAP_SCAN` of `/proc/self/pagemap`
//! that also reports the pages written since the previous scan; a write to a protected page is
//! resolved by the kernel at once (no handler thread), leaving the page marked as written. Where
//! the kernel does not offer it (older kernels, other systems, a sandbox refusing `userfaultfd`),
//! [`WriteWatch::new`] returns `None` and callers compare every page, as they must when a watch
//! fails.

/// Watches the pages of one memory range.
pub(super) struct WriteWatch {
    start: usize,
    len: usize,
}

impl WriteWatch {
    /// Watches `[start, start + len)` (page-aligned) and write-protects it; `None` when the kernel
    /// cannot.
    pub(super) fn new(start: *const u8, len: usize) -> Option<WriteWatch> {
        let start = start as usize;
        if len == 0 || !start.is_multiple_of(PAGE) || !len.is_multiple_of(PAGE) {
            return None;
        }
        sys::register(start, len)?;
        let mut watch = WriteWatch { start, len };
        watch.take_written()?;
        Some(watch)
    }

    /// The watched range's start address.
    pub(super) fn start(&self) -> usize {
        self.start
    }

    /// The watched range's length in bytes.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Also watches `[end of the range, start + new_len)` (the memory grew); `None` when that
    /// failed, after which the watch must not be used.
    pub(super) fn extend(&mut self, new_len: usize) -> Option<()> {
        if new_len <= self.len {
            return Some(());
        }
        if !new_len.is_multiple_of(PAGE) {
            return None;
        }
        sys::register(self.start + self.len, new_len - self.len)?;
        sys::scan(self.start + self.len, self.start + new_len, &mut |_, _| {})?;
        self.len = new_len;
        Some(())
    }

    /// The pages written since the last call (indices from the range's start, in order), each
    /// protected again; `None` when the kernel refused, after which every page must be assumed
    /// written and the watch must not be used.
    pub(super) fn take_written(&mut self) -> Option<Vec<u64>> {
        let mut written = Vec::new();
        sys::scan(self.start, self.start + self.len, &mut |from, to| {
            written.extend(((from - self.start) / PAGE) as u64..((to - self.start) / PAGE) as u64)
        })?;
        Some(written)
    }
}

/// The kernel's page size for the watch (the heap's 4 KiB pages).
const PAGE: usize = 4096;

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod sys {
    use super::PAGE;
    use std::fs::File;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::raw::{c_int, c_long, c_ulong};
    use std::sync::OnceLock;

    extern "C" {
        fn syscall(number: c_long, ...) -> c_long;
        fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    }

    #[cfg(target_arch = "x86_64")]
    const SYS_USERFAULTFD: c_long = 323;
    #[cfg(target_arch = "aarch64")]
    const SYS_USERFAULTFD: c_long = 282;

    const O_CLOEXEC: c_long = 0o2_000_000;
    const O_NONBLOCK: c_long = 0o4_000;
    const UFFD_USER_MODE_ONLY: c_long = 1;
    const UFFD_API: u64 = 0xaa;
    const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
    const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
    const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
    const PAGE_IS_WRITTEN: u64 = 1 << 1;
    const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
    const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;

    /// `_IOWR(kind, number, size)`.
    const fn iowr(kind: u8, number: u8, size: usize) -> c_ulong {
        (3 << 30) | ((size as c_ulong) << 16) | ((kind as c_ulong) << 8) | number as c_ulong
    }

    #[repr(C)]
    struct UffdioApi {
        api: u64,
        features: u64,
        ioctls: u64,
    }

    #[repr(C)]
    struct UffdioRegister {
        start: u64,
        len: u64,
        mode: u64,
        ioctls: u64,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct PageRegion {
        start: u64,
        end: u64,
        categories: u64,
    }

    #[repr(C)]
    struct PmScanArg {
        size: u64,
        flags: u64,
        start: u64,
        end: u64,
        walk_end: u64,
        vec: u64,
        vec_len: u64,
        max_pages: u64,
        category_inverted: u64,
        category_mask: u64,
        category_anyof_mask: u64,
        return_mask: u64,
    }

    const UFFDIO_API: c_ulong = iowr(0xaa, 0x3f, std::mem::size_of::<UffdioApi>());
    const UFFDIO_REGISTER: c_ulong = iowr(0xaa, 0x00, std::mem::size_of::<UffdioRegister>());
    const PAGEMAP_SCAN: c_ulong = iowr(b'f', 16, std::mem::size_of::<PmScanArg>());

    /// The process's userfaultfd (asynchronous write protection) and its pagemap, if the kernel
    /// offers both. `IC_SIM_WRITE_WATCH=0` turns the watch off.
    fn handles() -> Option<&'static (OwnedFd, File)> {
        static HANDLES: OnceLock<Option<(OwnedFd, File)>> = OnceLock::new();
        HANDLES
            .get_or_init(|| {
                if std::env::var_os("IC_SIM_WRITE_WATCH").is_some_and(|v| v == "0") {
                    return None;
                }
                // SAFETY: a plain system call; a non-negative result is a new descriptor we own.
                let fd = unsafe {
                    syscall(
                        SYS_USERFAULTFD,
                        O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY,
                    )
                };
                if fd < 0 {
                    return None;
                }
                // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
                let uffd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
                let wanted = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
                let mut api = UffdioApi {
                    api: UFFD_API,
                    features: wanted,
                    ioctls: 0,
                };
                // SAFETY: `api` is a valid `struct uffdio_api` for the duration of the call.
                let status = unsafe { ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api) };
                if status != 0 || api.features & wanted != wanted {
                    return None;
                }
                let pagemap = File::open("/proc/self/pagemap").ok()?;
                Some((uffd, pagemap))
            })
            .as_ref()
    }

    /// Registers `[start, start + len)` for asynchronous write protection.
    pub(super) fn register(start: usize, len: usize) -> Option<()> {
        let (uffd, _) = handles()?;
        let mut register = UffdioRegister {
            start: start as u64,
            len: len as u64,
            mode: UFFDIO_REGISTER_MODE_WP,
            ioctls: 0,
        };
        // SAFETY: `register` is a valid `struct uffdio_register`; registering changes how writes
        // to the range fault, never its content.
        let status = unsafe { ioctl(uffd.as_raw_fd(), UFFDIO_REGISTER, &mut register) };
        (status == 0).then_some(())
    }

    /// Reports the written ranges of `[start, end)` to `found` and write-protects them.
    pub(super) fn scan(
        start: usize,
        end: usize,
        found: &mut dyn FnMut(usize, usize),
    ) -> Option<()> {
        let (_, pagemap) = handles()?;
        let mut regions = [PageRegion::default(); 64];
        let mut from = start;
        while from < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: from as u64,
                end: end as u64,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            // SAFETY: `arg` is a valid `struct pm_scan_arg` whose `vec` points to `regions`,
            // which outlives the call and has room for `vec_len` entries.
            let count = unsafe { ioctl(pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg) };
            if count < 0 {
                return None;
            }
            for region in &regions[..count as usize] {
                found(region.start as usize, region.end as usize);
            }
            let walked = arg.walk_end as usize;
            if walked <= from || !walked.is_multiple_of(PAGE) {
                return None;
            }
            from = walked;
        }
        Some(())
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod sys {
    pub(super) fn register(_start: usize, _len: usize) -> Option<()> {
        None
    }

    pub(super) fn scan(
        _start: usize,
        _end: usize,
        _found: &mut dyn FnMut(usize, usize),
    ) -> Option<()> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_pages_written_since_the_last_scan() {
        // Page-aligned room for 16 pages inside a heap buffer.
        let mut buffer = vec![0u8; 17 * PAGE];
        let offset = buffer.as_ptr().align_offset(PAGE);
        let pages = &mut buffer[offset..offset + 16 * PAGE];
        let Some(mut watch) = WriteWatch::new(pages.as_ptr(), pages.len()) else {
            eprintln!("no write watch on this kernel: nothing to test");
            return;
        };
        assert_eq!(watch.take_written(), Some(vec![]));
        pages[3 * PAGE + 5] = 1;
        pages[9 * PAGE] = 2;
        pages[10 * PAGE + 4095] = 3;
        assert_eq!(watch.take_written(), Some(vec![3, 9, 10]));
        assert_eq!(watch.take_written(), Some(vec![]), "protected again");
        pages[0] = 4;
        assert_eq!(watch.take_written(), Some(vec![0]));
        let _ = pages[7];
        assert_eq!(watch.take_written(), Some(vec![]), "reads are not writes");
    }
}
