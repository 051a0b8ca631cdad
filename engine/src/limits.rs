//! Engine limits. Units last in every name; relationships checked at compile time.

/// Longest S3 key, in bytes of UTF-8 (S3's own limit).
pub const KEY_BYTES_MAX: usize = 1024;
/// Bucket names are 3..=63 bytes (S3 naming rules).
pub const BUCKET_NAME_BYTES_MIN: usize = 3;
pub const BUCKET_NAME_BYTES_MAX: usize = 63;
/// User metadata (`x-amz-meta-*` names and values together), as S3 allows.
pub const USER_METADATA_BYTES_MAX: usize = 2 * 1024;
/// Part numbers of a multipart upload are 1..=PART_NUMBER_MAX (S3: 10,000).
pub const PART_NUMBER_MAX: u32 = 10_000;
/// Largest object, multipart included (S3: 5 TiB).
pub const OBJECT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024 * 1024;
/// Default smallest non-final part (S3: 5 MiB); a server setting.
pub const PART_BYTES_MIN_DEFAULT: u64 = 5 * 1024 * 1024;
/// Largest single PUT or part (S3: 5 GiB).
pub const OBJECT_PUT_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// Objects up to this size live inside their index entry: no data file, no data fsync.
pub const INLINE_BYTES_MAX: usize = 8 * 1024;
/// A system metadata value (content type, cache control, ...).
pub const SYSTEM_METADATA_VALUE_BYTES_MAX: usize = 1024;
/// Keys a listing page may return (S3's max-keys ceiling).
pub const LIST_PAGE_KEYS_MAX: usize = 1000;
/// Index operations the committer takes into one durable batch.
pub const COMMIT_BATCH_OPS_MAX: usize = 1024;
/// Bytes of index records the committer takes into one batch.
pub const COMMIT_BATCH_BYTES_MAX: usize = 1024 * 1024;
/// Fan-out directories under `objects/` (two hex digits of the id).
pub const FANOUT_DIRS_COUNT: usize = 256;
/// Size of one page-aligned I/O buffer used for object data (the pool's, `iobuf`).
pub const IO_BUFFER_BYTES: usize = iobuf::BUFFER_BYTES;
/// Alignment of I/O buffers (a misaligned copy from the page cache ran 4x slower here).
pub const IO_BUFFER_ALIGN_BYTES: usize = iobuf::ALIGN_BYTES;
/// Stored index record size limit (keys + metadata + inline bodies fit well below fjall's value limit).
pub const META_RECORD_BYTES_MAX: usize = 64 * 1024;
/// I/O errors on one mountpath within `IO_ERROR_WINDOW_MS` that poison it (a failing drive).
pub const IO_ERRORS_TO_POISON: u64 = 16;
/// The window I/O errors are counted in; a mountpath with an error this recent is degraded.
pub const IO_ERROR_WINDOW_MS: u64 = 60_000;
/// Mountpaths one node may have.
pub const MOUNTPATHS_MAX: usize = 256;

const _: () =
    assert!(INLINE_BYTES_MAX + USER_METADATA_BYTES_MAX + 16 * SYSTEM_METADATA_VALUE_BYTES_MAX < META_RECORD_BYTES_MAX);
const _: () = assert!(OBJECT_PUT_BYTES_MAX * PART_NUMBER_MAX as u64 >= OBJECT_BYTES_MAX);
const _: () = assert!(IO_BUFFER_BYTES.is_multiple_of(IO_BUFFER_ALIGN_BYTES));
const _: () = assert!(FANOUT_DIRS_COUNT == 256, "fan-out uses one byte of the id");
const _: () = assert!(KEY_BYTES_MAX + BUCKET_NAME_BYTES_MAX + 1 < 65536, "fjall keys are at most 64 KiB");
