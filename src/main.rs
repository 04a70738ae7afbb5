//! The `rewarm` binary: parses the command line and hands over to the library.

/// mimalloc instead of glibc's allocator: a send pass allocates and frees many small
/// buffers per email (message building, SMTP encoding, rows), and glibc's `malloc`/`free`
/// (with `malloc_consolidate` on its fragmented heap) took ~18 % of a 1M pass's samples; with
/// mimalloc the 100k and 1M passes are 8–10 % faster (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` and `mi_option_purge_delay` (their places in
/// `mi_option_e`, mimalloc.h; the deprecated entries keep the places stable).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Memory freed goes back to the system at once and arenas are committed as they are
    // used: with mimalloc's defaults a 1.4M-lead import peaked at 173 MiB (glibc: 127 MiB),
    // with these at 105 MiB; the send pass keeps its gain.
    #[allow(unsafe_code)]
    // SAFETY: two option setters, called before any other thread exists; both options are
    // read whenever memory is purged or an arena is made, and any value is valid.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
    rewarm::cli::main()
}
