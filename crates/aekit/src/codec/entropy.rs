//! Range coding of quantised latents with integer probability tables (one per channel).
//!
//! A channel's table covers a contiguous support of integers `offset .. offset + n` and one
//! escape symbol after it. A latent outside the support is coded as the escape followed by
//! its value in 4-bit groups under fixed uniform models, so any integer round-trips, at a
//! cost only where the prior said it was unlikely. Every probability is an integer (fixed
//! point, [`PRECISION`] bits) and every symbol of the support has at least the smallest
//! one, so encoding never fails and decoding needs nothing but the integers.

use crate::error::{Error, Result};
use constriction::stream::model::DefaultContiguousCategoricalEntropyModel;
use constriction::stream::queue::{DefaultRangeDecoder, DefaultRangeEncoder};
use constriction::stream::{Decode, Encode};
use serde::{Deserialize, Serialize};

/// Bits of the fixed-point probabilities (`constriction`'s default for 32-bit words).
pub const PRECISION: usize = 24;
/// The most symbols a table's support may have.
pub const MAX_SUPPORT: usize = 1 << 16;

/// The integer probabilities of one channel's quantised latents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelTable {
    /// The smallest integer of the support.
    pub offset: i32,
    /// The probabilities of `offset`, `offset + 1`, ..., then of the escape symbol, in units
    /// of `2^-PRECISION`; all at least 1, summing to `2^PRECISION`.
    pub probabilities: Vec<u32>,
}

impl ChannelTable {
    /// The table of a prior's probability masses of the integers `offset ..
    /// offset + masses.len()`; whatever mass they leave goes to the escape. Masses are
    /// clipped to [0, 1]; each symbol gets at least the smallest probability.
    pub fn from_masses(offset: i32, masses: &[f64]) -> Result<Self> {
        if masses.is_empty() || masses.len() >= MAX_SUPPORT {
            return Err(Error::Input(format!(
                "a channel's support has {} symbols; it needs 1 to {}",
                masses.len(),
                MAX_SUPPORT - 1
            )));
        }
        let total = 1u64 << PRECISION;
        let clean: Vec<f64> = masses
            .iter()
            .map(|&m| {
                if m.is_finite() {
                    m.clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect();
        let sum: f64 = clean.iter().sum();
        let escape_mass = (1.0 - sum).max(0.0);
        let scale = if sum > 1.0 { 1.0 / sum } else { 1.0 };
        // Every symbol (the escape too) gets 1; the rest of the total is shared by mass.
        let symbols = clean.len() as u64 + 1;
        let free = (total - symbols) as f64;
        let mut probabilities: Vec<u64> = clean
            .iter()
            .chain(std::iter::once(&escape_mass))
            .map(|&m| 1 + (m * scale * free).floor() as u64)
            .collect();
        // Rounding down leaves a remainder: give it to the most likely symbol.
        let assigned: u64 = probabilities.iter().sum();
        let largest = (0..probabilities.len())
            .max_by_key(|&i| (probabilities[i], std::cmp::Reverse(i)))
            .expect("at least two symbols");
        probabilities[largest] += total - assigned;
        Ok(Self {
            offset,
            probabilities: probabilities.into_iter().map(|p| p as u32).collect(),
        })
    }

    /// Symbols of the support (without the escape).
    pub fn support(&self) -> usize {
        self.probabilities.len().saturating_sub(1)
    }

    /// Checks what a table read from a file must hold.
    pub fn validate(&self) -> Result<()> {
        let n = self.probabilities.len();
        if !(2..=MAX_SUPPORT).contains(&n) {
            return Err(Error::Input(format!(
                "an entropy table has {n} symbols; it needs 2 to {MAX_SUPPORT}"
            )));
        }
        if self.probabilities.contains(&0) {
            return Err(Error::Input(
                "an entropy table has a zero probability".into(),
            ));
        }
        let sum: u64 = self.probabilities.iter().map(|&p| u64::from(p)).sum();
        if sum != 1 << PRECISION {
            return Err(Error::Input(format!(
                "an entropy table's probabilities sum to {sum}, not 2^{PRECISION}"
            )));
        }
        if i64::from(self.offset) + n as i64 > i64::from(i32::MAX) {
            return Err(Error::Input("an entropy table's support overflows".into()));
        }
        Ok(())
    }

    fn model(&self) -> Result<DefaultContiguousCategoricalEntropyModel> {
        self.validate()?;
        DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(
            &self.probabilities,
            false,
        )
        .map_err(|()| Error::Input("an entropy table cannot be used".into()))
    }

    /// The ideal code length of `symbol` in bits (what the model's rate term estimates).
    pub fn bits(&self, symbol: i32) -> f64 {
        let total = (1u64 << PRECISION) as f64;
        let p = |i: usize| f64::from(self.probabilities[i]) / total;
        let index = i64::from(symbol) - i64::from(self.offset);
        if (0..self.support() as i64).contains(&index) {
            -p(index as usize).log2()
        } else {
            -p(self.support()).log2() + escape_bits(symbol) as f64
        }
    }
}

/// Fixed models of escaped values: how many 4-bit groups (1 to 8), then each group.
fn escape_models() -> (
    DefaultContiguousCategoricalEntropyModel,
    DefaultContiguousCategoricalEntropyModel,
) {
    let uniform = |n: u32| {
        let p = (1u32 << PRECISION) / n;
        DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(
            vec![p; n as usize],
            false,
        )
        .expect("a power-of-two uniform model")
    };
    (uniform(8), uniform(16))
}

fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

fn unzigzag(u: u32) -> i32 {
    ((u >> 1) as i32) ^ -((u & 1) as i32)
}

fn nibbles(u: u32) -> usize {
    (((32 - u.leading_zeros()) as usize).div_ceil(4)).max(1)
}

fn escape_bits(symbol: i32) -> usize {
    3 + 4 * nibbles(zigzag(symbol))
}

/// Range-codes `symbols`, symbol `i` with the table `tables[channel_of(i)]`.
pub fn encode(
    tables: &[ChannelTable],
    symbols: &[i32],
    channel_of: impl Fn(usize) -> usize,
) -> Result<Vec<u8>> {
    let models = tables
        .iter()
        .map(ChannelTable::model)
        .collect::<Result<Vec<_>>>()?;
    let (count_model, nibble_model) = escape_models();
    let mut encoder = DefaultRangeEncoder::new();
    let failed = |e| Error::Input(format!("entropy coding failed: {e:?}"));
    for (i, &symbol) in symbols.iter().enumerate() {
        let c = channel_of(i);
        let (table, model) = tables
            .get(c)
            .zip(models.get(c))
            .ok_or_else(|| Error::Input(format!("no entropy table for channel {c}")))?;
        let index = i64::from(symbol) - i64::from(table.offset);
        if (0..table.support() as i64).contains(&index) {
            encoder
                .encode_symbol(index as usize, model)
                .map_err(failed)?;
        } else {
            encoder
                .encode_symbol(table.support(), model)
                .map_err(failed)?;
            let u = zigzag(symbol);
            let n = nibbles(u);
            encoder.encode_symbol(n - 1, &count_model).map_err(failed)?;
            for k in 0..n {
                let nibble = ((u >> (4 * k)) & 15) as usize;
                encoder
                    .encode_symbol(nibble, &nibble_model)
                    .map_err(failed)?;
            }
        }
    }
    let words = encoder
        .into_compressed()
        .map_err(|e| Error::Input(format!("entropy coding failed: {e:?}")))?;
    Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
}

/// Decodes `count` symbols that [`encode`] wrote with the same tables and `channel_of`.
/// Bytes that do not come from such a call decode to some symbols or an error, never a
/// panic; the container's checksum is what tells a damaged payload apart.
pub fn decode(
    tables: &[ChannelTable],
    bytes: &[u8],
    count: usize,
    channel_of: impl Fn(usize) -> usize,
) -> Result<Vec<i32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(Error::Input(format!(
            "a range-coded payload of {} bytes is not whole 32-bit words",
            bytes.len()
        )));
    }
    let models = tables
        .iter()
        .map(ChannelTable::model)
        .collect::<Result<Vec<_>>>()?;
    let (count_model, nibble_model) = escape_models();
    let words: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
        .collect();
    let mut decoder = DefaultRangeDecoder::from_compressed(words)
        .map_err(|e| Error::Input(format!("the payload cannot be decoded: {e:?}")))?;
    let failed = |e| Error::Input(format!("the payload cannot be decoded: {e:?}"));
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let c = channel_of(i);
        let (table, model) = tables
            .get(c)
            .zip(models.get(c))
            .ok_or_else(|| Error::Input(format!("no entropy table for channel {c}")))?;
        let index = decoder.decode_symbol(model).map_err(failed)?;
        if index < table.support() {
            out.push(table.offset + index as i32);
        } else {
            let n = decoder.decode_symbol(&count_model).map_err(failed)? + 1;
            let mut u = 0u32;
            for k in 0..n {
                let nibble = decoder.decode_symbol(&nibble_model).map_err(failed)? as u32;
                u |= nibble << (4 * k);
            }
            out.push(unzigzag(u));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A discretised Laplace prior over -10..=10.
    fn laplace_table(scale: f64) -> ChannelTable {
        let cdf = |x: f64| {
            if x < 0.0 {
                0.5 * (x / scale).exp()
            } else {
                1.0 - 0.5 * (-x / scale).exp()
            }
        };
        let masses: Vec<f64> = (-10..=10)
            .map(|v| cdf(v as f64 + 0.5) - cdf(v as f64 - 0.5))
            .collect();
        ChannelTable::from_masses(-10, &masses).unwrap()
    }

    #[test]
    fn tables_sum_to_the_precision_and_give_every_symbol_a_chance() {
        let table = laplace_table(1.0);
        table.validate().unwrap();
        assert_eq!(table.support(), 21);
        assert!(table.probabilities.iter().all(|&p| p >= 1));
        // Masses of zero, NaN, or more than 1 in total still give a valid table.
        for masses in [vec![0.0; 5], vec![f64::NAN, 0.5], vec![0.9, 0.9, 0.9]] {
            ChannelTable::from_masses(0, &masses)
                .unwrap()
                .validate()
                .unwrap();
        }
        assert!(ChannelTable::from_masses(0, &[]).is_err());
        // The ideal code length follows the prior: 0 is cheap, 9 dear, 1000 escaped.
        assert!(table.bits(0) < 1.5 && table.bits(9) > 10.0);
        assert!(table.bits(1000) > table.bits(9));
        let mut broken = table.clone();
        broken.probabilities[0] += 1;
        assert!(
            broken
                .validate()
                .unwrap_err()
                .to_string()
                .contains("sum to")
        );
    }

    #[test]
    fn symbols_round_trip_with_escapes_and_cost_what_the_prior_says() {
        let tables = vec![laplace_table(0.5), laplace_table(3.0)];
        let mut symbols: Vec<i32> = (0..2000).map(|i: i32| (i * 7919) % 13 - 6).collect();
        symbols.extend([1000, -1000, i32::MAX, i32::MIN, 11, -11]);
        let channel_of = |i: usize| i % 2;
        let bytes = encode(&tables, &symbols, channel_of).unwrap();
        assert_eq!(
            decode(&tables, &bytes, symbols.len(), channel_of).unwrap(),
            symbols
        );
        // Within a few words of the ideal length.
        let ideal: f64 = symbols
            .iter()
            .enumerate()
            .map(|(i, &s)| tables[channel_of(i)].bits(s))
            .sum();
        let actual = 8.0 * bytes.len() as f64;
        assert!(
            actual <= ideal + 96.0 && actual >= ideal - 1.0,
            "{actual} vs {ideal}"
        );
        // The same input gives the same bytes.
        assert_eq!(encode(&tables, &symbols, channel_of).unwrap(), bytes);
        // No symbols: an empty or near-empty payload that decodes to nothing.
        let empty = encode(&tables, &[], channel_of).unwrap();
        assert!(decode(&tables, &empty, 0, channel_of).unwrap().is_empty());
    }

    #[test]
    fn damaged_payloads_and_missing_tables_are_errors_or_other_symbols_never_panics() {
        let tables = vec![laplace_table(1.0)];
        let symbols: Vec<i32> = (0..300).map(|i| (i % 5) - 2).collect();
        let bytes = encode(&tables, &symbols, |_| 0).unwrap();
        assert!(decode(&tables, &bytes[..bytes.len() - 1], 300, |_| 0).is_err());
        for cut in [0, 4, bytes.len() / 2 / 4 * 4] {
            let _ = decode(&tables, &bytes[..cut], 300, |_| 0);
        }
        let mut flipped = bytes.clone();
        flipped[3] ^= 0x55;
        let _ = decode(&tables, &flipped, 300, |_| 0);
        let error = encode(&tables, &symbols, |_| 1).unwrap_err().to_string();
        assert!(error.contains("channel 1"), "{error}");
    }
}
