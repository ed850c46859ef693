//! A compressed chunk of one series, as Prometheus and Gorilla store them: timestamps as
//! delta-of-delta in variable-width buckets, values XOR-ed with the previous one and written as
//! the meaningful bits only. A regular 15 s series costs about 1–2 bytes a sample instead of 16.

/// Appends bits to a byte vector, most significant bit first.
#[derive(Debug, Clone, Default)]
struct BitWriter {
    bytes: Vec<u8>,
    // Bits used in the last byte (0..8; 0 means a new byte is needed).
    used: u8,
}

impl BitWriter {
    /// Bytes added at a time when the buffer is full: a chunk grows in small steps instead of
    /// doubling, so an open chunk wastes at most this much (sealed chunks are shrunk to fit).
    const GROW_BYTES: usize = 32;

    fn new_byte(&mut self) {
        if self.bytes.len() == self.bytes.capacity() {
            self.bytes.reserve_exact(Self::GROW_BYTES);
        }
        self.bytes.push(0);
    }

    fn push_bit(&mut self, bit: bool) {
        if self.used == 0 {
            self.new_byte();
        }
        if bit {
            let last = self.bytes.last_mut().expect("a byte");
            *last |= 1 << (7 - self.used);
        }
        self.used = (self.used + 1) % 8;
    }

    /// Appends the low `n` bits of `value` (n ≤ 64), most significant first, a byte's worth at a time.
    fn push_bits(&mut self, value: u64, n: u8) {
        let mut left = u32::from(n);
        while left > 0 {
            if self.used == 0 {
                self.new_byte();
            }
            let free = 8 - u32::from(self.used);
            let take = free.min(left);
            let part = (value >> (left - take)) & ((1u64 << take) - 1);
            *self.bytes.last_mut().expect("a byte") |= (part as u8) << (free - take);
            self.used = ((u32::from(self.used) + take) % 8) as u8;
            left -= take;
        }
    }

    fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<bool> {
        let byte = *self.bytes.get(self.pos / 8)?;
        let b = (byte >> (7 - (self.pos % 8))) & 1 == 1;
        self.pos += 1;
        Some(b)
    }

    fn bits(&mut self, n: u8) -> Option<u64> {
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Some(v)
    }
}

/// Why a sample was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AppendError {
    /// Samples of a series must come in time order (a duplicate time is refused too).
    #[error("sample at {t_ms} ms is not after the last one at {last_ms} ms")]
    OutOfOrder { t_ms: i64, last_ms: i64 },
}

/// Delta-of-delta buckets: (marker bits, marker length, value bits).
const BUCKETS: [(u64, u8, u8); 4] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20), (0b1111, 4, 64)];

/// One compressed chunk.
#[derive(Debug, Clone, Default)]
pub struct XorChunk {
    bits: BitWriter,
    count: u32,
    first_t: i64,
    last_t: i64,
    last_delta: i64,
    last_v: u64,
    // Leading and trailing zeros of the last XOR written with its own window (for reuse).
    leading: u8,
    trailing: u8,
}

impl XorChunk {
    pub fn len(&self) -> usize {
        self.count as usize
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn first_t(&self) -> Option<i64> {
        (self.count > 0).then_some(self.first_t)
    }
    pub fn last_t(&self) -> Option<i64> {
        (self.count > 0).then_some(self.last_t)
    }
    /// Bytes held (the encoded bits and the struct).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bits.bytes.capacity()
    }

    /// Gives back the unused capacity (the store calls this when a chunk is full).
    pub fn shrink_to_fit(&mut self) {
        self.bits.shrink_to_fit();
    }

    /// Appends a sample; `t_ms` must be after the last one.
    pub fn append(&mut self, t_ms: i64, v: f64) -> Result<(), AppendError> {
        let vb = v.to_bits();
        match self.count {
            0 => {
                self.bits.push_bits(t_ms as u64, 64);
                self.bits.push_bits(vb, 64);
                self.first_t = t_ms;
            }
            _ if t_ms <= self.last_t => {
                return Err(AppendError::OutOfOrder {
                    t_ms,
                    last_ms: self.last_t,
                })
            }
            1 => {
                let delta = t_ms - self.last_t;
                self.write_varint(delta as u64);
                self.write_value(vb);
                self.last_delta = delta;
            }
            _ => {
                let delta = t_ms - self.last_t;
                let dod = delta - self.last_delta;
                if dod == 0 {
                    self.bits.push_bit(false);
                } else {
                    let (marker, mlen, vbits) = *BUCKETS
                        .iter()
                        .find(|(_, _, n)| *n == 64 || fits(dod, *n))
                        .expect("the last bucket fits all");
                    self.bits.push_bits(marker, mlen);
                    self.bits.push_bits(dod as u64 & mask(vbits), vbits);
                }
                self.write_value(vb);
                self.last_delta = delta;
            }
        }
        self.last_t = t_ms;
        self.last_v = vb;
        self.count += 1;
        Ok(())
    }

    fn write_varint(&mut self, mut x: u64) {
        loop {
            let byte = x & 0x7f;
            x >>= 7;
            self.bits.push_bits(byte | if x > 0 { 0x80 } else { 0 }, 8);
            if x == 0 {
                break;
            }
        }
    }

    fn write_value(&mut self, vb: u64) {
        let xor = vb ^ self.last_v;
        if xor == 0 {
            self.bits.push_bit(false);
            return;
        }
        self.bits.push_bit(true);
        let leading = (xor.leading_zeros() as u8).min(31);
        let trailing = xor.trailing_zeros() as u8;
        if self.count > 1 && leading >= self.leading && trailing >= self.trailing && (self.leading, self.trailing) != (0, 0) {
            // Fits the previous window: control bit 0 and the meaningful bits.
            self.bits.push_bit(false);
            let width = 64 - self.leading - self.trailing;
            self.bits.push_bits(xor >> self.trailing, width);
        } else {
            self.bits.push_bit(true);
            let width = 64 - leading - trailing;
            self.bits.push_bits(u64::from(leading), 5);
            // 64 meaningful bits are written as 0 (a width of 0 cannot occur).
            self.bits.push_bits(u64::from(width) & 0x3f, 6);
            self.bits.push_bits(xor >> trailing, width);
            self.leading = leading;
            self.trailing = trailing;
        }
    }

    /// The samples, in order.
    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.count as usize);
        let mut r = BitReader {
            bytes: &self.bits.bytes,
            pos: 0,
        };
        let (mut t, mut v, mut delta) = (0i64, 0u64, 0i64);
        let (mut leading, mut trailing) = (0u8, 0u8);
        for i in 0..self.count {
            let ok = (|| -> Option<()> {
                match i {
                    0 => {
                        t = r.bits(64)? as i64;
                        v = r.bits(64)?;
                        return Some(());
                    }
                    1 => {
                        let mut x = 0u64;
                        let mut shift = 0;
                        loop {
                            let byte = r.bits(8)?;
                            x |= (byte & 0x7f) << shift;
                            shift += 7;
                            if byte & 0x80 == 0 {
                                break;
                            }
                        }
                        delta = x as i64;
                    }
                    _ => {
                        let n = if !r.bit()? {
                            0
                        } else if !r.bit()? {
                            14
                        } else if !r.bit()? {
                            17
                        } else if !r.bit()? {
                            20
                        } else {
                            64
                        };
                        let dod = if n == 0 { 0 } else { sign_extend(r.bits(n)?, n) };
                        delta += dod;
                    }
                }
                t += delta;
                if r.bit()? {
                    if r.bit()? {
                        leading = r.bits(5)? as u8;
                        let mut width = r.bits(6)? as u8;
                        if width == 0 {
                            width = 64;
                        }
                        trailing = 64 - leading - width;
                    }
                    let width = 64 - leading - trailing;
                    v ^= r.bits(width)? << trailing;
                }
                Some(())
            })();
            if ok.is_none() {
                break;
            }
            out.push((t, f64::from_bits(v)));
        }
        out
    }
}

fn mask(n: u8) -> u64 {
    if n == 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

fn fits(x: i64, n: u8) -> bool {
    let lo = -(1i64 << (n - 1)) + 1;
    let hi = 1i64 << (n - 1);
    x >= lo && x <= hi
}

fn sign_extend(raw: u64, n: u8) -> i64 {
    if n == 64 {
        return raw as i64;
    }
    // Values were written as two's complement in n bits; `hi` itself (2^(n-1)) is positive.
    let x = raw as i64;
    if x > 1i64 << (n - 1) {
        x - (1i64 << n)
    } else {
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[(i64, f64)]) -> XorChunk {
        let mut c = XorChunk::default();
        for &(t, v) in samples {
            c.append(t, v).unwrap();
        }
        let back = c.samples();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!(a.0, b.0);
            assert!(a.1.to_bits() == b.1.to_bits(), "{} vs {}", a.1, b.1);
        }
        c
    }

    #[test]
    fn regular_series_round_trips_and_compresses() {
        let s: Vec<(i64, f64)> = (0..240)
            .map(|i| {
                (
                    1_700_000_000_000 + i * 15_000,
                    300.0 * 1024.0 * 1024.0 + ((i * 7919) % 101) as f64 * 4096.0,
                )
            })
            .collect();
        let c = round_trip(&s);
        let per_sample = c.bits.bytes.len() as f64 / s.len() as f64;
        assert!(per_sample < 4.0, "{per_sample} bytes a sample");
    }

    #[test]
    fn irregular_times_and_special_values_round_trip() {
        let mut t = 0i64;
        let mut s = Vec::new();
        for i in 0..500i64 {
            t += match i % 7 {
                0 => 1,
                1 => 15_000,
                2 => 15_001,
                3 => 9_000,
                4 => 3_000_000,
                5 => 1 << 40,
                _ => 15_000,
            };
            let v = match i % 9 {
                0 => f64::NAN,
                1 => f64::INFINITY,
                2 => -0.0,
                3 => 1e-300,
                4 => -123456.789,
                5 => 0.0,
                _ => i as f64 * 0.1,
            };
            s.push((t, v));
        }
        round_trip(&s);
    }

    #[test]
    fn out_of_order_samples_are_refused() {
        let mut c = XorChunk::default();
        c.append(10, 1.0).unwrap();
        c.append(20, 1.0).unwrap();
        assert_eq!(c.append(20, 2.0), Err(AppendError::OutOfOrder { t_ms: 20, last_ms: 20 }));
        assert_eq!(c.samples().len(), 2);
    }
}
