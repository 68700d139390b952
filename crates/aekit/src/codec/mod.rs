//! What learned compression (`kind = "codec"`, `aekit compress`, `aekit decompress`) writes
//! and reads, apart from the model that makes the latents:
//!
//! - [`entropy`]: integer probability tables of quantised latents, one per channel, and range
//!   coding of the latents with them (through `constriction`). The tables are integers,
//!   built once from a model's prior and stored with it, so that an encoder and a decoder on
//!   any machine, thread count or build use bit-identical models.
//! - [`container`]: the `.aez` file: magic, format version, model fingerprint, image shape and
//!   colour, payload length and checksum, payload. A reader refuses a truncated, corrupted or
//!   foreign file, or one made by another model, before it decodes anything.

pub mod container;
pub mod entropy;
