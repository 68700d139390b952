//! The standard normal quantile, and linear and spherical interpolation between latent
//! vectors: what latent-space walks and grids need to turn evenly spaced probabilities into
//! Gaussian codes and to move between codes.

/// Below this `sin` of the angle between two vectors, [`slerp`] treats them as parallel (or
/// opposite) and interpolates linearly, where the spherical formula would divide by ~0.
const PARALLEL_SINE: f64 = 1e-6;

/// The error function `erf(x)`, from the complementary error function's Chebyshev fit in
/// Numerical Recipes (`erfcc`, fractional error below 1.2e-7 everywhere).
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
}

/// The standard normal quantile (inverse CDF): the `x` with `P(Z <= x) = p`.
///
/// Wichura's algorithm AS241 (PPND16, Applied Statistics 37, 1988), relative accuracy about
/// 1e-16 over `(0, 1)`. `p <= 0` gives `-inf`, `p >= 1` gives `+inf`, NaN gives NaN.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    if p.is_nan() {
        return f64::NAN;
    }
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let q = p - 0.5;
    if q.abs() <= 0.425 {
        return q * central_ratio(0.180625 - q * q);
    }
    // The tails are computed from the smaller of p and 1 - p, then given the sign of q.
    let r = (-(if q < 0.0 { p } else { 1.0 - p }).ln()).sqrt();
    let x = if r <= 5.0 {
        intermediate_ratio(r - 1.6)
    } else {
        far_tail_ratio(r - 5.0)
    };
    if q < 0.0 { -x } else { x }
}

/// `sum(coefficients[i] * x^i)` by Horner's rule, lowest degree first.
fn polynomial(coefficients: &[f64; 8], x: f64) -> f64 {
    coefficients.iter().rev().fold(0.0, |acc, &c| acc * x + c)
}

/// AS241's rational approximation for `|p - 0.5| <= 0.425`, in `r = 0.180625 - q^2`.
#[allow(
    clippy::excessive_precision,
    reason = "AS241's published digits, kept so they can be checked against the paper"
)]
fn central_ratio(r: f64) -> f64 {
    const NUMERATOR: [f64; 8] = [
        3.387_132_872_796_366_608,
        1.331_416_678_917_843_774_5e2,
        1.971_590_950_306_551_442_7e3,
        1.373_169_376_550_946_112_5e4,
        4.592_195_393_154_987_145_7e4,
        6.726_577_092_700_870_085_3e4,
        3.343_057_558_358_812_810_5e4,
        2.509_080_928_730_122_672_7e3,
    ];
    const DENOMINATOR: [f64; 8] = [
        1.0,
        4.231_333_070_160_091_125_2e1,
        6.871_870_074_920_579_083e2,
        5.394_196_021_424_751_107_7e3,
        2.121_379_430_158_659_586_7e4,
        3.930_789_580_009_271_061e4,
        2.872_908_573_572_194_267_4e4,
        5.226_495_278_852_854_561e3,
    ];
    polynomial(&NUMERATOR, r) / polynomial(&DENOMINATOR, r)
}

/// AS241's tail approximation for `sqrt(-ln(min(p, 1 - p))) <= 5`, in `r - 1.6`.
#[allow(
    clippy::excessive_precision,
    reason = "AS241's published digits, kept so they can be checked against the paper"
)]
fn intermediate_ratio(r: f64) -> f64 {
    const NUMERATOR: [f64; 8] = [
        1.423_437_110_749_683_577_34,
        4.630_337_846_156_545_295_9,
        5.769_497_221_460_691_405_5,
        3.647_848_324_763_204_605_04,
        1.270_458_252_452_368_382_58,
        2.417_807_251_774_506_117_7e-1,
        2.272_384_498_926_918_458_33e-2,
        7.745_450_142_783_414_076_4e-4,
    ];
    const DENOMINATOR: [f64; 8] = [
        1.0,
        2.053_191_626_637_758_821_87,
        1.676_384_830_183_803_849_4,
        6.897_673_349_851_000_045_5e-1,
        1.481_039_764_274_800_745_9e-1,
        1.519_866_656_361_645_719_66e-2,
        5.475_938_084_995_344_946e-4,
        1.050_750_071_644_416_843_24e-9,
    ];
    polynomial(&NUMERATOR, r) / polynomial(&DENOMINATOR, r)
}

/// AS241's far-tail approximation for `sqrt(-ln(min(p, 1 - p))) > 5`, in `r - 5`.
#[allow(
    clippy::excessive_precision,
    reason = "AS241's published digits, kept so they can be checked against the paper"
)]
fn far_tail_ratio(r: f64) -> f64 {
    const NUMERATOR: [f64; 8] = [
        6.657_904_643_501_103_777_2,
        5.463_784_911_164_114_369_9,
        1.784_826_539_917_291_335_8,
        2.965_605_718_285_048_912_3e-1,
        2.653_218_952_657_612_309_3e-2,
        1.242_660_947_388_078_438_6e-3,
        2.711_555_568_743_487_578_15e-5,
        2.010_334_399_292_288_132_65e-7,
    ];
    const DENOMINATOR: [f64; 8] = [
        1.0,
        5.998_322_065_558_879_376_9e-1,
        1.369_298_809_227_358_053_1e-1,
        1.487_536_129_085_061_485_25e-2,
        7.868_691_311_456_132_591e-4,
        1.846_318_317_510_054_681_8e-5,
        1.421_511_758_316_445_888_7e-7,
        2.044_263_103_389_939_785_64e-15,
    ];
    polynomial(&NUMERATOR, r) / polynomial(&DENOMINATOR, r)
}

/// Linear interpolation `(1 - t) a + t b`, element by element.
///
/// # Panics
///
/// Panics if `a` and `b` have different lengths.
pub fn lerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "lerp: vectors of different lengths");
    a.iter().zip(b).map(|(&x, &y)| x + t * (y - x)).collect()
}

/// Spherical linear interpolation from `a` (at `t = 0`) to `b` (at `t = 1`) along the great
/// circle through them, `sin((1 - t) w) / sin w * a + sin(t w) / sin w * b` with `w` the
/// angle between them; for Gaussian latents this keeps the path at typical norms, where a
/// straight line passes through the unlikely region near the origin.
///
/// Falls back to [`lerp`] when either vector is zero or they are nearly parallel or opposite,
/// where the angle is undefined or the formula divides by ~0.
///
/// # Panics
///
/// Panics if `a` and `b` have different lengths.
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "slerp: vectors of different lengths");
    let Some(angle) = angle_between(a, b) else {
        return lerp(a, b, t);
    };
    let sine = angle.sin();
    let t = f64::from(t);
    let weight_a = ((1.0 - t) * angle).sin() / sine;
    let weight_b = (t * angle).sin() / sine;
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (weight_a * f64::from(x) + weight_b * f64::from(y)) as f32)
        .collect()
}

/// The angle between `a` and `b` in radians, or `None` when a vector is zero or the two are
/// within [`PARALLEL_SINE`] of parallel or opposite.
fn angle_between(a: &[f32], b: &[f32]) -> Option<f64> {
    let dot = |u: &[f32], v: &[f32]| -> f64 {
        u.iter()
            .zip(v)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum()
    };
    let norms = (dot(a, a) * dot(b, b)).sqrt();
    if norms == 0.0 {
        return None;
    }
    let angle = (dot(a, b) / norms).clamp(-1.0, 1.0).acos();
    (angle.sin() > PARALLEL_SINE).then_some(angle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf(0.5), erf(1), erf(2) to 10 digits (Abramowitz & Stegun, table 7.1).
        for (x, expected) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_8),
            (1.0, 0.842_700_792_9),
            (2.0, 0.995_322_265_0),
        ] {
            assert!((erf(x) - expected).abs() < 2e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) + expected).abs() < 2e-7);
        }
    }

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "got {actual}, expected {expected}"
        );
    }

    fn assert_vec_close(actual: &[f32], expected: &[f32]) {
        assert_eq!(actual.len(), expected.len());
        for (&x, &y) in actual.iter().zip(expected) {
            assert_close(f64::from(x), f64::from(y), 1e-6);
        }
    }

    #[test]
    fn quantiles_match_scipy() {
        // scipy 1.17.1 `scipy.stats.norm.ppf` (numpy 2.4.6).
        let expected = [
            (0.001, -3.090232306167813),
            (0.025, -1.9599639845400545),
            (0.3, -0.5244005127080409),
            (0.5, 0.0),
            (0.9, 1.2815515655446004),
            (0.93, 1.475791028179171),
            (0.999999, 4.753424308817087),
            (1e-300, -37.0470962993612),
        ];
        for (p, x) in expected {
            assert_close(inverse_normal_cdf(p), x, 1e-9 * x.abs().max(1.0));
        }
    }

    #[test]
    fn quantile_is_antisymmetric() {
        // Dyadic p, so that 1 - p is exact.
        for p in [2f64.powi(-40), 2f64.powi(-7), 0.0625, 0.25, 0.4375] {
            assert_close(inverse_normal_cdf(p), -inverse_normal_cdf(1.0 - p), 1e-9);
        }
    }

    #[test]
    fn quantile_edge_cases() {
        assert_eq!(inverse_normal_cdf(0.0), f64::NEG_INFINITY);
        assert_eq!(inverse_normal_cdf(-0.5), f64::NEG_INFINITY);
        assert_eq!(inverse_normal_cdf(1.0), f64::INFINITY);
        assert_eq!(inverse_normal_cdf(2.0), f64::INFINITY);
        assert!(inverse_normal_cdf(f64::NAN).is_nan());
    }

    #[test]
    fn lerp_endpoints_and_midpoint() {
        let a = [1.0, -2.0, 3.0];
        let b = [3.0, 2.0, -1.0];
        assert_vec_close(&lerp(&a, &b, 0.0), &a);
        assert_vec_close(&lerp(&a, &b, 1.0), &b);
        assert_vec_close(&lerp(&a, &b, 0.5), &[2.0, 0.0, 1.0]);
    }

    #[test]
    fn slerp_moves_along_the_circle() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let half = std::f32::consts::FRAC_1_SQRT_2;
        assert_vec_close(&slerp(&a, &b, 0.5), &[half, half]);
        let third = std::f32::consts::FRAC_PI_6;
        assert_vec_close(&slerp(&a, &b, 1.0 / 3.0), &[third.cos(), third.sin()]);
        assert_vec_close(&slerp(&a, &b, 0.0), &a);
        assert_vec_close(&slerp(&a, &b, 1.0), &b);
    }

    #[test]
    fn slerp_keeps_the_norm_of_equal_norm_vectors() {
        let a = [3.0, 0.0, 4.0];
        let b = [0.0, 5.0, 0.0];
        for t in [0.1, 0.25, 0.5, 0.8] {
            let point = slerp(&a, &b, t);
            let norm = point.iter().map(|&x| x * x).sum::<f32>().sqrt();
            assert_close(f64::from(norm), 5.0, 1e-5);
        }
    }

    #[test]
    fn slerp_falls_back_to_lerp() {
        let a = [1.0, 2.0];
        // Parallel, opposite and zero vectors: the angle gives no great circle.
        for b in [[2.0, 4.0], [-1.0, -2.0], [0.0, 0.0]] {
            assert_vec_close(&slerp(&a, &b, 0.3), &lerp(&a, &b, 0.3));
        }
        assert_vec_close(&slerp(&[0.0, 0.0], &a, 0.3), &lerp(&[0.0, 0.0], &a, 0.3));
    }
}
