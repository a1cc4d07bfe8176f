//! The value types of the language that Rust lacks (fixed-point decimals, timestamps) and checked arithmetic.
//!
//! Generated code never uses `+`, `-`, `*` or `/` directly: it calls [`Num`] and the functions here, which
//! return [`ArithmeticError`] instead of wrapping or panicking. The generated `Rejection` converts that error
//! into its `arithmetic-overflow` or `division-by-zero` variant.

use std::fmt;
use std::str::FromStr;

/// Why a checked computation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithmeticError {
    Overflow,
    DivisionByZero,
}

impl fmt::Display for ArithmeticError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArithmeticError::Overflow => "arithmetic overflow",
            ArithmeticError::DivisionByZero => "division by zero",
        })
    }
}

impl std::error::Error for ArithmeticError {}

pub type Checked<T> = Result<T, ArithmeticError>;

/// A fixed-point decimal: `mantissa / 10^SCALE`, stored as an `i64` (`(decimal 2)` is `Decimal<2>`).
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(crate = rkyv, derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash))]
#[repr(transparent)]
pub struct Decimal<const SCALE: u32> {
    mantissa: i64,
}

impl<const SCALE: u32> Decimal<SCALE> {
    pub const ZERO: Self = Decimal { mantissa: 0 };

    /// The value `mantissa / 10^SCALE`.
    pub const fn from_mantissa(mantissa: i64) -> Self {
        Decimal { mantissa }
    }

    pub const fn mantissa(self) -> i64 {
        self.mantissa
    }

    /// `10^SCALE`; scales are checked to be at most 18 by the compiler.
    pub const fn unit() -> i64 {
        10i64.pow(SCALE)
    }

    /// Parses `"-12.5"`, `"3"` or `"0.05"`; more digits after the point than the scale is an error, not a rounding.
    pub fn parse(text: &str) -> Result<Self, ParseDecimalError> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(fraction)
            || (digits.contains('.') && fraction.is_empty())
        {
            return Err(ParseDecimalError::Syntax);
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > SCALE as usize {
            return Err(ParseDecimalError::TooPrecise { scale: SCALE });
        }
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa * 10 + i128::from(b - b'0');
            if mantissa > i128::from(i64::MAX) + 1 {
                return Err(ParseDecimalError::OutOfRange);
            }
        }
        for _ in fraction.len()..SCALE as usize {
            mantissa *= 10;
        }
        let mantissa = if negative { -mantissa } else { mantissa };
        i64::try_from(mantissa).map(Decimal::from_mantissa).map_err(|_| ParseDecimalError::OutOfRange)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseDecimalError {
    Syntax,
    TooPrecise { scale: u32 },
    OutOfRange,
}

impl fmt::Display for ParseDecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseDecimalError::Syntax => f.write_str("expected a decimal number such as 12.50"),
            ParseDecimalError::TooPrecise { scale } => write!(f, "more than {scale} digits after the decimal point"),
            ParseDecimalError::OutOfRange => f.write_str("the number is too large"),
        }
    }
}

impl std::error::Error for ParseDecimalError {}

impl<const SCALE: u32> FromStr for Decimal<SCALE> {
    type Err = ParseDecimalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Decimal::parse(s)
    }
}

impl<const SCALE: u32> fmt::Display for Decimal<SCALE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let magnitude = self.mantissa.unsigned_abs();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        if SCALE == 0 {
            return write!(f, "{sign}{magnitude}");
        }
        let unit = 10u64.pow(SCALE);
        write!(f, "{sign}{}.{:0width$}", magnitude / unit, magnitude % unit, width = SCALE as usize)
    }
}

impl<const SCALE: u32> fmt::Debug for Decimal<SCALE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// JSON: written as a string (`"25.50"`) so no client reads it as a float; read from a string or a whole number
/// (`25`), never from a float, which cannot say `0.1` exactly.
impl<const SCALE: u32> serde::Serialize for Decimal<SCALE> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de, const SCALE: u32> serde::Deserialize<'de> for Decimal<SCALE> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<const S: u32>;
        impl<const S: u32> serde::de::Visitor<'_> for Visitor<S> {
            type Value = Decimal<S>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a decimal with at most {S} digits after the point, as a string (or a whole number)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Decimal::parse(v).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
                v.checked_mul(Decimal::<S>::unit()).map(Decimal::from_mantissa).ok_or_else(|| E::custom("too large"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
                let v = i64::try_from(v).map_err(|_| E::custom("too large"))?;
                self.visit_i64(v)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
                // A float is not exact: decimals with a fraction are written as strings ("25.50").
                Err(E::custom(format!("write the decimal {v} as a string, such as \"25.50\"")))
            }
        }
        deserializer.deserialize_any(Visitor::<SCALE>)
    }
}

/// Microseconds since the Unix epoch, UTC: the language's `timestamp`.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(crate = rkyv, derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash))]
#[repr(transparent)]
pub struct Timestamp {
    micros: i64,
}

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp { micros: 0 };

    pub const fn from_micros(micros: i64) -> Self {
        Timestamp { micros }
    }

    pub const fn micros(self) -> i64 {
        self.micros
    }

    /// The wall clock; before 1970 or after year 294,247 reads as the nearest representable time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Timestamp { micros: i64::try_from(since.as_micros()).unwrap_or(i64::MAX) }
    }

    /// Parses RFC 3339 (`2026-11-23T13:27:47.5Z`, `...+01:00`) or a plain integer of microseconds.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(micros) = text.parse::<i64>() {
            return Some(Timestamp { micros });
        }
        let b = text.as_bytes();
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let s = text.get(range)?;
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        };
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
            return None;
        }
        if b[16] != b':' {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) || hour > 23 || minute > 59 {
            return None;
        }
        if second > 60 {
            return None;
        }
        let mut rest = &text[19..];
        let mut micros_frac = 0i64;
        if let Some(frac) = rest.strip_prefix('.') {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            for (i, c) in frac.bytes().take(digits).enumerate() {
                if i < 6 {
                    micros_frac = micros_frac * 10 + i64::from(c - b'0');
                }
            }
            for _ in digits..6 {
                micros_frac *= 10;
            }
            rest = &frac[digits..];
        }
        let offset_seconds = match rest {
            "Z" | "z" => 0,
            _ => {
                let rb = rest.as_bytes();
                if rb.len() != 6 || rb[3] != b':' || !matches!(rb[0], b'+' | b'-') {
                    return None;
                }
                let (h, m) = (rest[1..3].parse::<i64>().ok()?, rest[4..6].parse::<i64>().ok()?);
                let sign = if rb[0] == b'-' { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
        };
        let days = days_from_civil(year, month, day);
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset_seconds;
        Some(Timestamp { micros: seconds.checked_mul(1_000_000)?.checked_add(micros_frac)? })
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with microseconds: `2026-11-23T13:27:47.000000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.micros.div_euclid(1_000_000);
        let micros = self.micros.rem_euclid(1_000_000);
        let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
            second_of_day / 3600,
            second_of_day % 3600 / 60,
            second_of_day % 60
        )
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time such as \"2026-11-23T13:27:47Z\", or microseconds since 1970")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse(v).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_micros(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v).map(Timestamp::from_micros).map_err(|_| E::custom("timestamp out of range"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Checked arithmetic on the language's numbers (integers and decimals of one scale).
pub trait Num: Copy + Ord + Sized {
    fn add(self, rhs: Self) -> Checked<Self>;
    fn sub(self, rhs: Self) -> Checked<Self>;
    fn neg(self) -> Checked<Self>;
    fn abs(self) -> Checked<Self>;
    /// The value as `mantissa / 10^scale`, for conversions.
    fn to_scaled(self) -> (i128, u32);
    /// The value of `mantissa / 10^scale` in this type, digits beyond this type's scale dropped toward zero.
    fn from_scaled(mantissa: i128, scale: u32) -> Checked<Self>;
}

/// An integer type: also multiplies, divides and takes remainders with itself.
pub trait Int: Num {
    fn mul(self, rhs: Self) -> Checked<Self>;
    fn div(self, rhs: Self) -> Checked<Self>;
    fn rem(self, rhs: Self) -> Checked<Self>;
    fn to_i128(self) -> i128;
}

fn rescale(mantissa: i128, from: u32, to: u32) -> Checked<i128> {
    if to >= from {
        10i128.checked_pow(to - from).and_then(|f| mantissa.checked_mul(f)).ok_or(ArithmeticError::Overflow)
    } else {
        Ok(10i128.checked_pow(from - to).map_or(0, |f| mantissa / f))
    }
}

macro_rules! int_num {
    ($($t:ty),*) => {$(
        impl Num for $t {
            fn add(self, rhs: Self) -> Checked<Self> { self.checked_add(rhs).ok_or(ArithmeticError::Overflow) }
            fn sub(self, rhs: Self) -> Checked<Self> { self.checked_sub(rhs).ok_or(ArithmeticError::Overflow) }
            fn neg(self) -> Checked<Self> { (0 as $t).checked_sub(self).ok_or(ArithmeticError::Overflow) }
            fn abs(self) -> Checked<Self> { if self < (0 as $t) { self.neg() } else { Ok(self) } }
            fn to_scaled(self) -> (i128, u32) { (i128::from(self), 0) }
            fn from_scaled(mantissa: i128, scale: u32) -> Checked<Self> {
                <$t>::try_from(rescale(mantissa, scale, 0)?).map_err(|_| ArithmeticError::Overflow)
            }
        }
        impl Int for $t {
            fn mul(self, rhs: Self) -> Checked<Self> { self.checked_mul(rhs).ok_or(ArithmeticError::Overflow) }
            fn div(self, rhs: Self) -> Checked<Self> {
                if rhs == 0 { return Err(ArithmeticError::DivisionByZero) }
                self.checked_div(rhs).ok_or(ArithmeticError::Overflow)
            }
            fn rem(self, rhs: Self) -> Checked<Self> {
                if rhs == 0 { return Err(ArithmeticError::DivisionByZero) }
                self.checked_rem(rhs).ok_or(ArithmeticError::Overflow)
            }
            fn to_i128(self) -> i128 { i128::from(self) }
        }
    )*};
}

int_num!(u8, u16, u32, u64, i8, i16, i32, i64);

impl<const SCALE: u32> Num for Decimal<SCALE> {
    fn add(self, rhs: Self) -> Checked<Self> {
        self.mantissa.checked_add(rhs.mantissa).map(Decimal::from_mantissa).ok_or(ArithmeticError::Overflow)
    }
    fn sub(self, rhs: Self) -> Checked<Self> {
        self.mantissa.checked_sub(rhs.mantissa).map(Decimal::from_mantissa).ok_or(ArithmeticError::Overflow)
    }
    fn neg(self) -> Checked<Self> {
        self.mantissa.checked_neg().map(Decimal::from_mantissa).ok_or(ArithmeticError::Overflow)
    }
    fn abs(self) -> Checked<Self> {
        self.mantissa.checked_abs().map(Decimal::from_mantissa).ok_or(ArithmeticError::Overflow)
    }
    fn to_scaled(self) -> (i128, u32) {
        (i128::from(self.mantissa), SCALE)
    }
    fn from_scaled(mantissa: i128, scale: u32) -> Checked<Self> {
        i64::try_from(rescale(mantissa, scale, SCALE)?)
            .map(Decimal::from_mantissa)
            .map_err(|_| ArithmeticError::Overflow)
    }
}

impl<const SCALE: u32> Decimal<SCALE> {
    /// `(* decimal integer)`: scales the amount.
    pub fn mul_int<I: Int>(self, rhs: I) -> Checked<Self> {
        let product = i128::from(self.mantissa).checked_mul(rhs.to_i128()).ok_or(ArithmeticError::Overflow)?;
        i64::try_from(product).map(Decimal::from_mantissa).map_err(|_| ArithmeticError::Overflow)
    }

    /// `(/ decimal integer)`: divides the amount, dropping digits beyond the scale toward zero.
    pub fn div_int<I: Int>(self, rhs: I) -> Checked<Self> {
        let divisor = rhs.to_i128();
        if divisor == 0 {
            return Err(ArithmeticError::DivisionByZero);
        }
        i64::try_from(i128::from(self.mantissa) / divisor)
            .map(Decimal::from_mantissa)
            .map_err(|_| ArithmeticError::Overflow)
    }
}

/// `(as T x)`: a checked conversion between any two numeric types.
pub fn convert<From: Num, To: Num>(value: From) -> Checked<To> {
    let (mantissa, scale) = value.to_scaled();
    To::from_scaled(mantissa, scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_print() {
        let check = |text: &str, expected: Result<&str, ParseDecimalError>| {
            let got = Decimal::<2>::parse(text).map(|d| d.to_string());
            assert_eq!(got.as_deref().map_err(|e| *e), expected, "{text}");
        };
        check("25.5", Ok("25.50"));
        check("-0.05", Ok("-0.05"));
        check("3", Ok("3.00"));
        check("1.230", Ok("1.23"));
        check("1.234", Err(ParseDecimalError::TooPrecise { scale: 2 }));
        check("1.", Err(ParseDecimalError::Syntax));
        check(".5", Err(ParseDecimalError::Syntax));
        check("1e5", Err(ParseDecimalError::Syntax));
        check("92233720368547758.07", Ok("92233720368547758.07"));
        check("92233720368547758.08", Err(ParseDecimalError::OutOfRange));
        check("-92233720368547758.08", Ok("-92233720368547758.08"));
    }

    #[test]
    fn decimal_json_reads_numbers_and_strings() {
        let read = |json: &str| serde_json::from_str::<Decimal<2>>(json).map(|d| d.to_string()).map_err(|_| ());
        assert_eq!(read("25.5"), Err(()), "floats are not exact: decimals come as strings");
        assert_eq!(read("\"25.5\""), Ok("25.50".into()));
        assert_eq!(read("\"0.10\""), Ok("0.10".into()));
        assert_eq!(read("7"), Ok("7.00".into()));
        assert_eq!(read("0.001"), Err(()));
        assert_eq!(serde_json::to_string(&Decimal::<2>::from_mantissa(-5)).unwrap(), "\"-0.05\"");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Num::add(u8::MAX, 1), Err(ArithmeticError::Overflow));
        assert_eq!(Num::sub(0u32, 1), Err(ArithmeticError::Overflow));
        assert_eq!(Int::div(1i32, 0), Err(ArithmeticError::DivisionByZero));
        assert_eq!(Int::div(i64::MIN, -1), Err(ArithmeticError::Overflow));
        assert_eq!(Num::neg(i8::MIN), Err(ArithmeticError::Overflow));
        let d = Decimal::<2>::from_mantissa(1999);
        assert_eq!(d.mul_int(3u32), Ok(Decimal::from_mantissa(5997)));
        assert_eq!(d.div_int(2u8), Ok(Decimal::from_mantissa(999)));
        assert_eq!(d.div_int(0u8), Err(ArithmeticError::DivisionByZero));
        assert_eq!(Decimal::<2>::from_mantissa(i64::MAX).mul_int(2u8), Err(ArithmeticError::Overflow));
    }

    #[test]
    fn conversions_are_checked_and_truncate_toward_zero() {
        assert_eq!(convert::<Decimal<2>, i32>(Decimal::from_mantissa(-1999)), Ok(-19));
        assert_eq!(convert::<u32, Decimal<2>>(7), Ok(Decimal::from_mantissa(700)));
        assert_eq!(convert::<Decimal<4>, Decimal<2>>(Decimal::from_mantissa(12_345)), Ok(Decimal::from_mantissa(123)));
        assert_eq!(convert::<i32, u8>(256), Err(ArithmeticError::Overflow));
        assert_eq!(convert::<i32, u8>(-1), Err(ArithmeticError::Overflow));
        assert_eq!(convert::<u64, Decimal<18>>(10), Err(ArithmeticError::Overflow));
    }

    #[test]
    fn timestamps_round_trip_rfc3339() {
        let check = |text: &str, expected: Option<&str>| {
            assert_eq!(Timestamp::parse(text).map(|t| t.to_string()).as_deref(), expected, "{text}");
        };
        check("2026-11-23T13:27:47Z", Some("2026-11-23T13:27:47.000000Z"));
        check("2026-11-23T13:27:47.5+01:00", Some("2026-11-23T12:27:47.500000Z"));
        check("1969-12-31T23:59:59.999999Z", Some("1969-12-31T23:59:59.999999Z"));
        check("2024-02-29T00:00:00Z", Some("2024-02-29T00:00:00.000000Z"));
        check("2023-02-29T00:00:00Z", None);
        check("2026-13-01T00:00:00Z", None);
        check("1000000", Some("1970-01-01T00:00:01.000000Z"));
        check("yesterday", None);
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z"), Some(Timestamp::EPOCH));
    }
}
