//! A hashing worker's argon2 memory, and how it is laid out in pages.
//!
//! argon2 reads the block it mixes in from anywhere in its 19 MiB, so with 4 KiB pages nearly every
//! such read misses the TLB and walks the page tables. Backed by 2 MiB pages (transparent huge
//! pages, which the kernel grants to memory that asks for them in `madvise` mode, Debian's and
//! Ubuntu's default, and to all large memory in `always` mode), the same hash costs 5–7 % less CPU
//! (BENCHMARKS.md, "argon2id on huge pages"). Where the kernel grants none, the memory is ordinary
//! pages and nothing else changes.

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};

use super::{HashError, internal};

/// Memory for `size` argon2 blocks, asking the kernel for 2 MiB pages before any is touched.
pub fn blocks(size: usize) -> Vec<Block> {
    let mut blocks = Vec::with_capacity(size);
    #[cfg(target_os = "linux")]
    advise_huge_pages(blocks.spare_capacity_mut());
    blocks.resize(size, Block::new());
    blocks
}

/// The size of a transparent huge page on x86-64 and on arm64 with 4 KiB pages.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Asks for 2 MiB pages under the whole huge pages that `memory` spans. Only advice: a kernel
/// that refuses it (huge pages `never`, or not this architecture's size) leaves ordinary pages.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn advise_huge_pages<T>(memory: &mut [std::mem::MaybeUninit<T>]) {
    let bytes = size_of_val(memory);
    let start = memory.as_mut_ptr().cast::<u8>();
    let end = (start.addr() + bytes) / HUGE_PAGE * HUGE_PAGE;
    let Some(first) = start.addr().checked_next_multiple_of(HUGE_PAGE) else {
        return;
    };
    if first >= end {
        return;
    }
    let from = start.with_addr(first).cast::<std::ffi::c_void>();
    // SAFETY: `from .. end` lies inside `memory`, which this function holds the only borrow of, and
    // MADV_HUGEPAGE changes only how the kernel backs those pages, never what they hold (unlike
    // the advice that makes madvise unsafe in general, such as MADV_DONTNEED).
    let advised =
        unsafe { rustix::mm::madvise(from, end - first, rustix::mm::Advice::LinuxHugepage) };
    if let Err(e) = advised {
        tracing::debug!(error = %e, "no huge pages for argon2 memory");
    }
}

/// A worker's argon2 memory: allocated at its first hash, sized for today's cost, reused for every
/// hash after.
pub(super) struct Memory {
    pub(super) blocks: Vec<Block>,
    /// Blocks a hash at today's cost needs.
    size: usize,
}

impl Memory {
    pub(super) fn new(size: usize) -> Self {
        Self {
            blocks: Vec::new(),
            size,
        }
    }

    /// argon2 of `password` and `salt` into `out`. A hash costlier than today's (a stored hash
    /// made under a past, higher `m_cost`) gets memory for this call only, so that a worker never
    /// holds more than today's cost; a cheaper one uses the front of the worker's.
    fn hash_into(
        &mut self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let needed = argon2.params().block_count();
        if needed > self.size {
            return argon2.hash_password_into(password, salt, out);
        }
        if self.blocks.is_empty() {
            self.blocks = blocks(self.size);
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut self.blocks[..needed])
    }

    /// The PHC string of `password` hashed with `salt` by argon2id (version 0x13) under `params`:
    /// the string the argon2 crate's `hash_password_with_salt` makes.
    pub(super) fn phc(
        &mut self,
        params: &Params,
        password: &[u8],
        salt: &[u8],
    ) -> Result<String, HashError> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let out = buffer
            .get_mut(..len)
            .ok_or_else(|| internal("output length"))?;
        self.hash_into(&argon2, password, salt, out)
            .map_err(internal)?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(internal)?,
            salt: Some(Salt::new(salt).map_err(internal)?),
            hash: Some(Output::new(out).map_err(internal)?),
        };
        Ok(hash.to_string())
    }

    /// Whether `password` hashes to `phc` under the algorithm, version, parameters, salt and output
    /// length `phc` names, compared in constant time (`Output`'s equality). Anything that does
    /// not parse never matches.
    pub(super) fn matches(&mut self, password: &[u8], phc: &str) -> bool {
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let algorithm = Algorithm::try_from(hash.algorithm.as_str());
        let version = hash.version.map(Version::try_from).transpose();
        let params = Params::try_from(&hash);
        let (Ok(algorithm), Ok(version), Ok(params)) = (algorithm, version, params) else {
            return false;
        };
        let argon2 = Argon2::new(algorithm, version.unwrap_or_default(), params);
        let mut buffer = [0u8; Output::MAX_LENGTH];
        let out = &mut buffer[..expected.len()];
        self.hash_into(&argon2, password, salt, out).is_ok()
            && Output::new(out).is_ok_and(|computed| computed == *expected)
    }
}
