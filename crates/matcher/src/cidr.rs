//! The `cidr` operator: IPv4 and IPv6 networks in `address/length` form.
//!
//! Invariants: a parsed [`Cidr`] stores its network with host bits cleared, and
//! an IPv4 network never matches an IPv6 address or the reverse. Addresses are
//! compared as integers (`u128`), so matching is a mask and a compare.

use std::net::IpAddr;

/// A parsed CIDR block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cidr {
    /// The block as written (for `to_json`).
    pub(crate) source: String,
    /// Whether it is an IPv6 block.
    pub(crate) v6: bool,
    /// Prefix length in bits.
    pub(crate) len: u8,
    /// Network address with host bits cleared.
    pub(crate) network: u128,
}

/// An address as `(is_v6, bits)`.
pub(crate) fn parse_ip(s: &str) -> Option<(bool, u128)> {
    match s.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => Some((false, u128::from(u32::from(a)))),
        IpAddr::V6(a) => Some((true, u128::from(a))),
    }
}

/// The mask that keeps the first `len` bits of a `width`-bit address.
pub(crate) fn mask(len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let all = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        all & !((1u128 << (width - len)) - 1)
    }
}

impl Cidr {
    /// Parses `a.b.c.d/n` or `x:y::z/n`.
    pub(crate) fn parse(source: &str) -> Result<Cidr, String> {
        let (addr, len) = match source.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (source, None),
        };
        let (v6, bits) = parse_ip(addr).ok_or_else(|| {
            format!("\"{source}\" is not a CIDR block: \"{addr}\" is not an IP address")
        })?;
        let width: u8 = if v6 { 128 } else { 32 };
        let len = match len {
            None => width,
            Some(l) => match l.parse::<u8>() {
                Ok(n) if n <= width && !l.starts_with('+') => n,
                _ => {
                    return Err(format!(
                        "\"{source}\" is not a CIDR block: prefix length must be 0..={width}"
                    ));
                }
            },
        };
        Ok(Cidr {
            source: source.to_string(),
            v6,
            len,
            network: bits & mask(len, width),
        })
    }

    /// Whether the address `(v6, bits)` lies in the block.
    pub(crate) fn contains(&self, v6: bool, bits: u128) -> bool {
        v6 == self.v6 && bits & mask(self.len, if v6 { 128 } else { 32 }) == self.network
    }

    /// Whether the string is an address inside the block.
    pub(crate) fn matches_str(&self, s: &str) -> bool {
        parse_ip(s).is_some_and(|(v6, bits)| self.contains(v6, bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_and_v6() {
        let c = Cidr::parse("10.0.0.0/24").expect("valid");
        assert!(c.matches_str("10.0.0.255"));
        assert!(!c.matches_str("10.0.1.0"));
        assert!(!c.matches_str("not an ip"));
        let c6 = Cidr::parse("2001:db8::/32").expect("valid");
        assert!(c6.matches_str("2001:db8:ffff::1"));
        assert!(!c6.matches_str("2001:db9::1"));
        assert!(!c6.matches_str("10.0.0.1"));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .expect("valid")
                .matches_str("1.2.3.4")
        );
        assert!(Cidr::parse("10.0.0.0/33").is_err());
        assert!(Cidr::parse("10.0.0/8").is_err());
    }
}
